#!/usr/bin/env python3
"""A/B of two Comptoir builds on the checkout scenario, one process on PostgreSQL (issue 12's
"the trait indirection is free" aim). See bench/ab.sh.

The machine is shared and noisy: one run of each build, minutes apart, says little. This runs
the two builds in alternation, A B B A A B B A ... (BENCH_AB_ROUNDS pairs), each point a fresh
server on a fresh database with the same load (bench/checkout.py's postgres mode and its load
generator, checkout scenario, BENCH_AB_C users), and a pgbench checkout transaction point
between pairs to show how much the machine itself moved. It reports every point, the median
orders/s of each build, the ratio of the medians and the ratios of the pairs.

`python3 bench/ab.py --render bench/out/ab.json` writes the report again from a run's figures.

Environment: BENCH_AB_BIN (the other build's comptoir binary; required), BENCH_AB_ROUNDS
(pairs, default 4), BENCH_AB_C (users, default 32), BENCH_SECONDS and BENCH_PG_URL as in
bench/checkout.py.
"""
import json, os, shutil, statistics, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkout as cb  # noqa: E402

OTHER = os.environ.get("BENCH_AB_BIN")
ROUNDS = int(os.environ.get("BENCH_AB_ROUNDS", "4"))
USERS = int(os.environ.get("BENCH_AB_C", "32"))


def one_point(work, binary, tag):
    cb.BIN = binary
    # a fresh data directory each time: the demo accounts are seeded (and printed) on first start
    s = cb.Server(tempfile.mkdtemp(prefix=f"{tag}-", dir=work), "postgres")
    try:
        s.start()
        r = cb.loadgen(s, "checkout", USERS, ["--skus", "500", "--topup", "100000"])
    finally:
        s.stop()
    r["build"] = tag
    cb.log(f"   {tag}: " + cb.brief(r))
    return r


def main():
    if sys.argv[1:2] == ["--render"]:
        # the report again from a run's raw figures (bench/out/ab.json)
        rep = json.load(open(sys.argv[2]))
        write(rep, report(rep, rep.get("a", cb.BIN), rep.get("b", OTHER or "?")))
        return
    if not OTHER or not os.path.exists(OTHER):
        sys.exit("BENCH_AB_BIN must name the other build's comptoir binary")
    this = cb.BIN
    for f in (this, cb.LOADGEN):
        if not os.path.exists(f):
            sys.exit(f"{f} is missing: run bench/ab.sh")
    work = tempfile.mkdtemp(prefix="comptoir-ab-bench-", dir=os.path.join(cb.ROOT, "target"))
    points, calib = [], []
    rep = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": cb.machine(), "users": USERS,
           "seconds_per_point": cb.SECONDS, "load_start": cb.loadavg(), "a": this, "b": OTHER}
    try:
        cb.recreate_db(cb.CALIB_DB)
        schema = os.path.join(work, "calib-schema.sql")
        open(schema, "w").write(cb.PG_SCHEMA)
        cb.subprocess.run(["psql", cb.db_url(cb.CALIB_DB), "-v", "ON_ERROR_STOP=1", "-q", "-f", schema],
                          check=True, capture_output=True, timeout=300)
        for i in range(ROUNDS):
            order = [("A", this), ("B", OTHER)] if i % 2 == 0 else [("B", OTHER), ("A", this)]
            cb.log(f"== pair {i + 1} of {ROUNDS}")
            for tag, binary in order:
                points.append(one_point(work, binary, tag))
            calib.append(cb.pgbench(work, "uniform", USERS, cb.SECONDS))
            cb.log(f"   pgbench uniform c{USERS}: {calib[-1]}")
    finally:
        cb.BIN = this
        cb.drop_db(cb.CALIB_DB)
        cb.drop_db(cb.APP_DB)
        shutil.rmtree(work, ignore_errors=True)
    rep["points"], rep["pgbench"], rep["load_end"] = points, calib, cb.loadavg()
    md = report(rep, this, OTHER)
    write(rep, md)


def write(rep, md):
    os.makedirs(cb.OUT, exist_ok=True)
    json.dump(rep, open(os.path.join(cb.OUT, "ab.json"), "w"), indent=2)
    open(os.path.join(cb.RESULTS, time.strftime("%Y-%m-%d") + "-ab.md"), "w").write(md)
    print(md)


def machine_line(m):
    if not isinstance(m, dict):
        return str(m)
    return (f"{m.get('cpus')} CPUs ({m.get('cpu_model')}), {m.get('mem_gib')} GiB, Linux {m.get('kernel')}; "
            f"PostgreSQL {m.get('postgres')} (shared instance of the machine)")


def report(rep, this, other):
    rate = lambda tag: [p["orders_per_s"] for p in rep["points"] if p.get("build") == tag and "orders_per_s" in p]
    a, b = rate("A"), rate("B")
    lines = [f"# A/B: two builds, checkout, one process on PostgreSQL ({rep['users']} users)", "",
             f"Run {rep['when']}. Machine: {machine_line(rep['machine'])}. Load average {rep['load_start']} at start, {rep['load_end']} at "
             f"the end. {rep['seconds_per_point']:g} s per point; each point a fresh server and database; the "
             f"builds alternate A B, B A, A B …", "",
             f"- A: `{os.path.relpath(this, cb.ROOT)}`", f"- B: `{other}`", "",
             "| pair | build | orders/s | checkout p50 / p99 ms | invariants |", "|---:|---|---:|---|---|"]
    for i, p in enumerate(rep["points"]):
        if "orders_per_s" not in p:
            lines.append(f"| {i // 2 + 1} | {p.get('build')} | failed | | {p.get('failed', '')[:200]} |")
            continue
        inv = p.get("invariants", {})
        lines.append(f"| {i // 2 + 1} | {p['build']} | {p['orders_per_s']} | {p['checkout_ms']['p50']} / "
                     f"{p['checkout_ms']['p99']} | {'ok' if inv.get('ok') else inv.get('violations')} |")
    tps = [c.get("tps") for c in rep["pgbench"] if c.get("tps")]
    lines += ["", f"pgbench checkout transaction, uniform, c{rep['users']}, between pairs: "
              + ", ".join(f"{t:.0f}" for t in tps) + " tps"
              + (f" (max ÷ min {max(tps) / min(tps):.2f})" if tps else ""), ""]
    if a and b:
        pairs = [x / y for x, y in zip(a, b) if y]
        lines += [f"- A median {statistics.median(a):.1f} orders/s (min {min(a):.1f}, max {max(a):.1f}); "
                  f"B median {statistics.median(b):.1f} (min {min(b):.1f}, max {max(b):.1f}).",
                  f"- A ÷ B, medians: **{statistics.median(a) / statistics.median(b):.3f}**; per pair: "
                  + ", ".join(f"{r:.2f}" for r in pairs) + f" (median {statistics.median(pairs):.3f}).", ""]
    lines.append("Command: `BENCH_AB_BIN=<other build>/target/release/comptoir bench/ab.sh`. Raw: `bench/out/ab.json`.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
