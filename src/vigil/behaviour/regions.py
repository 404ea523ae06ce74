"""Approximate locations of cloud regions, for ``impossible_travel``.

Coordinates are the metro area of each region (public information, rounded to a tenth of a
degree). A region code vigil does not know is placed at the centre of the area its prefix names
(``us-``, ``eu-``, ``ap-``, ``europe-``, ...), and the explanation says so; a code with no known
prefix has no location and travel is not judged for it.
"""

from __future__ import annotations

import math
from typing import Final

LatLon = tuple[float, float]

REGIONS: Final[dict[str, LatLon]] = {
    # AWS
    "us-east-1": (38.9, -77.4),
    "us-east-2": (40.0, -83.0),
    "us-west-1": (37.4, -121.9),
    "us-west-2": (45.8, -119.7),
    "ca-central-1": (45.5, -73.6),
    "ca-west-1": (51.0, -114.1),
    "sa-east-1": (-23.5, -46.6),
    "eu-west-1": (53.3, -6.3),
    "eu-west-2": (51.5, -0.1),
    "eu-west-3": (48.9, 2.4),
    "eu-central-1": (50.1, 8.7),
    "eu-central-2": (47.4, 8.5),
    "eu-north-1": (59.3, 18.1),
    "eu-south-1": (45.5, 9.2),
    "eu-south-2": (41.6, -0.9),
    "il-central-1": (32.1, 34.8),
    "me-south-1": (26.1, 50.6),
    "me-central-1": (24.5, 54.4),
    "af-south-1": (-33.9, 18.4),
    "ap-east-1": (22.3, 114.2),
    "ap-south-1": (19.1, 72.9),
    "ap-south-2": (17.4, 78.5),
    "ap-southeast-1": (1.4, 103.8),
    "ap-southeast-2": (-33.9, 151.2),
    "ap-southeast-3": (-6.2, 106.8),
    "ap-southeast-4": (-37.8, 145.0),
    "ap-northeast-1": (35.7, 139.7),
    "ap-northeast-2": (37.6, 127.0),
    "ap-northeast-3": (34.7, 135.5),
    # Google Cloud
    "us-central1": (41.3, -95.9),
    "us-east1": (33.2, -80.0),
    "us-east4": (39.0, -77.5),
    "us-west1": (45.6, -121.2),
    "us-west2": (34.1, -118.2),
    "europe-west1": (50.4, 3.8),
    "europe-west2": (51.5, -0.1),
    "europe-west3": (50.1, 8.7),
    "europe-west4": (53.4, 6.8),
    "europe-north1": (60.6, 27.2),
    "asia-east1": (24.0, 120.5),
    "asia-northeast1": (35.7, 139.7),
    "asia-southeast1": (1.4, 103.8),
    "asia-south1": (19.1, 72.9),
    "australia-southeast1": (-33.9, 151.2),
    "southamerica-east1": (-23.5, -46.6),
    # Azure
    "eastus": (37.4, -79.4),
    "eastus2": (36.7, -78.4),
    "centralus": (41.6, -93.6),
    "westus": (37.8, -122.4),
    "westus2": (47.2, -119.9),
    "northeurope": (53.3, -6.3),
    "westeurope": (52.4, 4.9),
    "uksouth": (51.5, -0.1),
    "francecentral": (46.3, 2.4),
    "germanywestcentral": (50.1, 8.7),
    "southeastasia": (1.4, 103.8),
    "eastasia": (22.3, 114.2),
    "japaneast": (35.7, 139.8),
    "australiaeast": (-33.9, 151.2),
    "brazilsouth": (-23.5, -46.6),
    "centralindia": (18.6, 73.9),
}

# The centre of the area a prefix names, for region codes not in the table.
_AREAS: Final[dict[str, LatLon]] = {
    "us": (39.0, -98.0),
    "ca": (50.0, -95.0),
    "sa": (-15.0, -55.0),
    "southamerica": (-15.0, -55.0),
    "northamerica": (40.0, -95.0),
    "eu": (50.0, 10.0),
    "europe": (50.0, 10.0),
    "uk": (52.0, -1.0),
    "me": (25.0, 50.0),
    "il": (32.0, 35.0),
    "af": (-10.0, 20.0),
    "africa": (-10.0, 20.0),
    "ap": (15.0, 115.0),
    "asia": (15.0, 115.0),
    "australia": (-30.0, 145.0),
    "cn": (35.0, 105.0),
}
_PREFIX_END: Final = "-0123456789"


def locate(region: str) -> tuple[LatLon, bool] | None:
    """``(lat, lon), exact`` for a region code; None when it cannot be placed."""
    got = REGIONS.get(region.lower())
    if got is not None:
        return got, True
    code = region.lower()
    end = next((i for i, c in enumerate(code) if c in _PREFIX_END), len(code))
    area = _AREAS.get(code[:end])
    return (area, False) if area is not None else None


def distance_km(a: LatLon, b: LatLon) -> float:
    """Great-circle distance in kilometres (haversine, mean Earth radius)."""
    lat1, lon1 = math.radians(a[0]), math.radians(a[1])
    lat2, lon2 = math.radians(b[0]), math.radians(b[1])
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))
