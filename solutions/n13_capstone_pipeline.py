"""Worked solutions of notebook 13 (capstone pipeline), written as a learner would."""


def compression_summary(base, row, latency_key="ms_b1"):
    return {
        "smaller": base["bytes"] / row["bytes"],
        "faster": base[latency_key] / row[latency_key],
        "accuracy_drop_points": 100 * (base["accuracy"] - row["accuracy"]),
    }


def pick_stage(rows, max_bytes, max_ms, latency_key="ms_b1"):
    fits = [r for r in rows if r["bytes"] <= max_bytes and r[latency_key] <= max_ms]
    if not fits:
        return None
    best = fits[0]
    for r in fits[1:]:
        if r["accuracy"] > best["accuracy"] or (
            r["accuracy"] == best["accuracy"] and r["bytes"] < best["bytes"]
        ):
            best = r
    return best


def choose_under_budget(rows, max_bytes, tolerance_points=0.0):
    fits = [(i, r) for i, r in enumerate(rows) if r["bytes"] <= max_bytes]
    if not fits:
        return None
    best = max(r["accuracy"] for _, r in fits)
    close = [(i, r) for i, r in fits if 100 * (best - r["accuracy"]) <= tolerance_points + 1e-9]
    # the smallest; equal bytes: the more accurate (the other is off the front), then the earlier
    return min(close, key=lambda ir: (ir[1]["bytes"], -ir[1]["accuracy"], ir[0]))[1]


EXERCISES = {
    "pipeline.compression_summary": compression_summary,
    "pipeline.pick_stage": pick_stage,
    "pipeline.choose_under_budget": choose_under_budget,
}
