"""The evaluation's figures as Markdown (for ``docs/detection.md``) and JSON.

:func:`update_document` rewrites the part of a Markdown file between ``<!-- eval:begin -->`` and
``<!-- eval:end -->`` (written by ``vigil eval --update-doc``), so the document's prose stays
hand-written and its figures stay reproducible.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

from vigil.errors import VigilError
from vigil.evaluation.attacks import DEFAULT_WITHIN, WITHIN
from vigil.evaluation.fleet import QUIET, SHORT_LIVED

__all__ = ["BEGIN", "END", "criteria", "markdown", "passed", "update_document"]

BEGIN: Final = "<!-- eval:begin -->"
END: Final = "<!-- eval:end -->"

IN_TIME_TARGET: Final = 0.95
FP_TARGET: Final = 0.005


def _pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def _frac(a: int, b: int) -> str:
    return f"{a}/{b} ({_pct(a / b if b else 0.0, 0)})"


def _dist(d: dict[str, Any]) -> str:
    if d.get("median") is None:
        return "-"
    med = d["median"]
    med_s = f"{med:g}" if isinstance(med, float) else str(med)
    return f"{med_s} / {d['p90']} / {d['max']}"


def _within(attack: str) -> str:
    if attack == "escalation_chain":
        return "before 1st grant/key"
    return f"<= {WITHIN.get(attack, DEFAULT_WITHIN)}"


def passed(report: dict[str, Any]) -> bool:
    """True when every generated run of ``report`` meets the done criteria: episodes in time,
    false positives, and every episode against a quiet or short-lived identity in time."""
    runs = [report.get("criteria"), report.get("holdout_criteria")]
    return all(c["in_time_ok"] and c["fp_ok"] and c.get("quiet_short_lived_ok", True) for c in runs if c)


def criteria(generated: dict[str, Any]) -> dict[str, Any]:
    """The issue's done criteria on a generated run: in-time share and false-positive rate."""
    totals = generated["totals"]
    young = [v for k, v in generated.get("by_archetype", {}).items() if k in QUIET or k in SHORT_LIVED]
    young_episodes = sum(v["episodes"] for v in young)
    young_in_time = sum(v["detected_in_time"] for v in young)
    return {
        "in_time_rate": totals["in_time_rate"],
        "in_time_target": IN_TIME_TARGET,
        "in_time_ok": totals["in_time_rate"] >= IN_TIME_TARGET,
        "fp_rate": totals["fp_rate"],
        "fp_target": FP_TARGET,
        "fp_ok": totals["fp_rate"] <= FP_TARGET,
        "quiet_short_lived_episodes": young_episodes,
        "quiet_short_lived_in_time": young_in_time,
        "quiet_short_lived_ok": young_in_time == young_episodes,
    }


def markdown(report: dict[str, Any]) -> str:
    """The figures of ``report`` (``{"generated": ..., "datasets": ..., "command": ...}``) as Markdown."""
    out: list[str] = []
    command = report.get("command")
    if command:
        out += [
            f"Reproduce: `{command}`" + (f" (vigil {report['version']})" if report.get("version") else ""),
            "",
        ]
    gen = report.get("generated")
    if gen:
        out += _generated(gen, "Generated fleet")
    held = report.get("holdout")
    if held:
        out += _generated(held, "Generated fleet, held-out seeds")
    ds = report.get("datasets")
    if ds:
        out += _datasets(ds)
    return "\n".join(out).rstrip() + "\n"


def _generated(gen: dict[str, Any], title: str) -> list[str]:
    t = gen["totals"]
    c = criteria(gen)
    out = [
        f"### {title}",
        "",
        f"Seeds {', '.join(str(x) for x in gen['seeds'])}: "
        f"{len(gen['seeds'])} fleets x {gen['identities_per_seed']} identities x {gen['days']} days "
        f"({gen['learning_days']} learning), {gen['requests']:,} requests decided in "
        f"{gen['decide_seconds']:.1f} s ({gen['seconds']:.1f} s in all); step-up threshold "
        f"{gen['step_up_threshold']}.",
        "",
        f"- Attack episodes detected in time: **{_frac(t['detected_in_time'], t['episodes'])}** "
        f"(target >= {_pct(IN_TIME_TARGET, 0)}: {'met' if c['in_time_ok'] else 'NOT met'}); detected at all: "
        f"{_frac(t['detected'], t['episodes'])}.",
        f"- False-positive rate on benign requests after learning: **{_pct(t['fp_rate'], 3)}** "
        f"({t['benign_blocked']:,} of {t['benign_after_learning']:,} denied or stepped up; target <= "
        f"{_pct(FP_TARGET, 1)}: {'met' if c['fp_ok'] else 'NOT met'}). Flagged (incl. allowed with "
        f"risk >= threshold): {_pct(t['flag_rate'], 3)}.",
        f"- Of the false positives, {t['benign_blocked_by_quarantine']:,} were requests of "
        f"{t['benign_identities_quarantined']} benign identities denied while quarantined (nobody "
        f"lifts a quarantine in this replay); stepped up or denied for their own risk: "
        f"{_pct(t['fp_rate_own_risk'], 3)}. Benign requests after learning with any signal raised "
        f"(below the threshold or not): {t['benign_with_signals']:,} "
        f"({_pct(t['benign_with_signals'] / t['benign_after_learning'] if t['benign_after_learning'] else 0.0, 2)}).",
        f"- Request-level precision (detected attack requests / all detected requests after learning): "
        f"{_pct(t['request_precision'])}.",
        "",
        "| attack type | episodes | detected | in time (window) | blocked | by its own signal "
        "| requests until detection (median / p90 / max) | signal precision | signals seen (requests) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in gen["by_type"].items():
        seen = ", ".join(f"{k} {v}" for k, v in list(r["signals_seen"].items())[:5]) or "-"
        out.append(
            f"| `{name}` | {r['episodes']} | {_frac(r['detected'], r['episodes'])} "
            f"| {_frac(r['detected_in_time'], r['episodes'])} ({_within(name)}) | {r['blocked']} "
            f"| {r['detected_by_expected_signal']} | {_dist(r['requests_until_detection'])} "
            f"| {_pct(r['signal_precision'])} | {seen} |"
        )
    arch = gen.get("by_archetype", {})
    if arch:
        out += [
            "",
            f"- Episodes against quiet or short-lived identities detected in time: "
            f"**{_frac(c['quiet_short_lived_in_time'], c['quiet_short_lived_episodes'])}** (target: every one: "
            f"{'met' if c['quiet_short_lived_ok'] else 'NOT met'}).",
            "",
            "| victim archetype | episodes | detected | in time |",
            "|---|---|---|---|",
        ]
        for key, v in arch.items():
            tag = " (quiet)" if key in QUIET else (" (short-lived)" if key in SHORT_LIVED else "")
            out.append(
                f"| `{key}`{tag} | {v['episodes']} | {_frac(v['detected'], v['episodes'])} "
                f"| {_frac(v['detected_in_time'], v['episodes'])} |"
            )
    variants = [
        f"`{name}` {v}: {x['detected_in_time']}/{x['episodes']} in time, {x['detected']}/{x['episodes']} detected"
        for name, r in gen["by_type"].items()
        for v, x in r.get("variants", {}).items()
    ]
    if variants:
        out += ["", "By variant: " + "; ".join(variants) + "."]
    out += ["", "Misses and late detections:", ""]
    any_miss = False
    for name, r in gen["by_type"].items():
        for m in r["misses"][:4]:
            any_miss = True
            out.append(
                f"- `{name}` missed: {m.get('victim')} ({m.get('archetype')}"
                f"{', ' + m['variant'] if m.get('variant') else ''}), max risk {m['max_risk']}, "
                f"signals {', '.join(m['signals']) or 'none'}"
            )
        if len(r["misses"]) > 4:
            out.append(f"- `{name}`: {len(r['misses']) - 4} more misses")
        for m in r["late"][:2]:
            any_miss = True
            out.append(
                f"- `{name}` late: {m.get('victim')} ({m.get('archetype')}), first detected at request "
                f"{m['first_detection']} ({', '.join(m['signals']) or 'no signal'})"
            )
        if len(r["late"]) > 2:
            out.append(f"- `{name}`: {len(r['late']) - 2} more late detections")
    if not any_miss:
        out.append("- none")
    fp = gen["false_positives"]
    out += ["", "False positives after learning, by benign drift and by identity kind:", ""]
    out += ["| benign traffic | requests | denied or stepped up | rate |", "|---|---|---|---|"]
    for key, v in fp["by_drift"].items():
        out.append(f"| drift `{key}` | {v['requests']:,} | {v['blocked']:,} | {_pct(v['rate'], 2)} |")
    for key, v in fp["by_group"].items():
        out.append(f"| archetype `{key}` | {v['requests']:,} | {v['blocked']:,} | {_pct(v['rate'], 2)} |")
    if fp["by_signal"]:
        signals = ", ".join(f"`{k}` {v}" for k, v in fp["by_signal"].items())
        who = ", ".join(f"{k} {v}" for k, v in fp["top_identities"].items())
        quarantined = ", ".join(fp.get("quarantined_identities", [])) or "none"
        out += [
            "",
            f"Signals on the false positives: {signals}. Identities: {who}; quarantined: {quarantined}.",
        ]
    if fp.get("signals_below_threshold"):
        signals = ", ".join(f"`{k}` {v:,}" for k, v in fp["signals_below_threshold"].items())
        out += [
            "",
            f"Signals raised on benign requests after learning (mostly below the threshold): {signals}.",
        ]
    for key, v in gen.get("out_of_band", {}).items():
        firsts = ", ".join(str(x) for x in v["first_blocked_request"]) or "never"
        signals = ", ".join(f"`{k}` {n:,}" for k, n in list(v["signals"].items())[:4]) or "none"
        out += [
            "",
            f"Not counted above, an out-of-band change (drift `{key}`): {v['identities']} service(s) moved "
            f"for good to another region and network without telling vigil: {v['blocked']:,} of "
            f"{v['requests']:,} of their requests denied ({v['blocked_by_quarantine']:,} while quarantined); "
            f"first denial at request {firsts}; signals {signals}.",
        ]
    out += [
        "",
        f"During learning, {t['benign_learning_blocked']:,} of {t['benign_learning']:,} benign requests were "
        f"denied or stepped up; {t['excluded_post_attack']:,} benign requests of victims after their "
        "episode started are left out of the rate.",
        "",
    ]
    return out


def _datasets(ds: dict[str, Any]) -> list[str]:
    out = ["### Public data sets", ""]
    stratus = ds.get("stratus") or {}
    if stratus:
        variants = list(stratus)
        out += [
            "Stratus Red Team detonations, each technique replayed with a victim's credentials in a "
            "benign 40-identity account (per variant: first detected request / requests, the victim's "
            "kind, the signals seen in the episode):",
            "",
            "| technique | tactics | " + " | ".join(variants) + " |",
            "|---|---|" + "---|" * len(variants),
        ]
        first = stratus[variants[0]]
        tactics = first.get("tactics", {})
        for name in first["by_type"]:
            cells = []
            for v in variants:
                r = stratus[v]["by_type"][name]
                at = r["requests_until_detection"]["median"]
                signals = ", ".join(list(r["signals_seen"])[:3])
                where = f"at {at:g}" if at is not None else "**missed**"
                victim = r["episode_outcomes"][0].get("archetype", "") if r.get("episode_outcomes") else ""
                cells.append(
                    f"{where} / {r['attack_requests']}"
                    + (f" `{victim}`" if victim else "")
                    + (f" ({signals})" if signals else "")
                )
            short = name.removeprefix("aws.")
            out.append(f"| `{short}` | {', '.join(tactics.get(name, []))} | " + " | ".join(cells) + " |")
        out += ["", "| variant | techniques detected | within 3 requests | benign FP rate after learning |"]
        out += ["|---|---|---|---|"]
        for v in variants:
            t = stratus[v]["totals"]
            out.append(
                f"| {v} | {_frac(t['detected'], t['episodes'])} | {_frac(t['detected_in_time'], t['episodes'])} "
                f"| {_pct(t['fp_rate'], 3)} ({t['benign_blocked']:,} of {t['benign_after_learning']:,}) |"
            )
        out.append("")
    otrf = ds.get("otrf") or []
    if otrf:
        out += [
            "OTRF EC2 proxy S3 exfiltration (103 records, 11 malicious), per record against `labels.csv`:",
            "",
            "| variant | true alerts | false alerts | precision | recall | first alert (malicious #) | signals |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in otrf:
            signals = ", ".join(f"{k} {v}" for k, v in r["signals"].items()) or "-"
            out.append(
                f"| {r['variant']} | {r['true_alerts']} | {r['false_alerts']} | {_pct(r['precision'])} "
                f"| {_pct(r['recall'])} | {r['first_alert'] or '-'} | {signals} |"
            )
        out.append("")
    return out


def update_document(path: str | Path, figures: str) -> None:
    """Replace the text between the eval markers of ``path`` with ``figures``; raises VigilError
    (``invalid_output``) when the file has no markers."""
    doc = Path(path)
    text = doc.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise VigilError(f"{str(doc)!r} has no {BEGIN} ... {END} markers", code="invalid_output")
    doc.write_text(pattern.sub(lambda _: f"{BEGIN}\n{figures}{END}", text, count=1), encoding="utf-8")
