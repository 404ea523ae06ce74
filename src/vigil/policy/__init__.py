"""Cedar: parse and validate with cedarpy (the only importer of cedarpy), compile the typed policy tree
into an indexed evaluator, the entity store, Cedar values and extensions."""
