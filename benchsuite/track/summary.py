"""The end-of-session table: one line per case, with the conditions of the latency figures."""

from __future__ import annotations


def format_table(rows: list[dict]) -> str:
    head = (f"{'case':<44} {'Top-1':>6} {'dense':>6} {'floor':>6} {'lat µs':>8} "
            f"{'dense µs':>8} {'speed-up':>8} {'MACs':>6}  result")
    lines = [head, "-" * len(head)]
    for r in rows:
        macs = r["macs"] / r["dense_macs"] if r.get("dense_macs") else float("nan")
        outcome = r.get("outcome") or ("passed" if r.get("passed") else "failed")
        verdict = {"passed": "pass", "failed": "FAIL"}.get(outcome, outcome)
        if r.get("cached"):
            verdict += " (cached)"
        lines.append(
            f"{r['label'][:44]:<44} {r['top1']:>6.3f} {r['dense_top1']:>6.3f} "
            f"{r.get('threshold', float('nan')):>6.3f} {r['latency_median_us']:>8.1f} "
            f"{r['dense_latency_median_us']:>8.1f} {r['speedup']:>7.2f}x {macs:>6.2f}  {verdict}"
        )
    conds = {(r["device"], r.get("device_name") or "unknown", r["precision"], r.get("threads"),
              r.get("streams"), r.get("batch"), r.get("input_shape"), r["runtime_version"])
             for r in rows}
    for dev, name, prec, threads, streams, batch, shape, version in sorted(conds, key=str):
        lines.append(f"conditions: device {dev} [{name}], precision {prec}, threads {threads}, "
                     f"streams {streams}, batch {batch}, input {shape}, OpenVINO {version}; "
                     "latency = median of benchmark_app runs (sync API, latency hint)")
    lines.append("speed-up = dense median latency / pruned median latency, measured "
                 "interleaved in the same run; MACs = pruned / dense")
    return "\n".join(lines)
