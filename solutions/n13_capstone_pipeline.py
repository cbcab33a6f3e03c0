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


EXERCISES = {
    "pipeline.compression_summary": compression_summary,
    "pipeline.pick_stage": pick_stage,
}
