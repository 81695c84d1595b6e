#!/usr/bin/env python3
"""Checkout and flash-sale benchmark (issue 4; PERFORMANCE.md G1, G2, G13). See bench/checkout.sh.

1. Baselines, in the same run: pgbench with the checkout transaction of PERFORMANCE.md (guarded
   stock update + order insert + outbox insert, prepared, synchronous_commit on) on the same
   PostgreSQL, uniform over 10,000 SKUs and hot on one SKU; python3 sqlite3 with the same three
   statements (WAL, BEGIN IMMEDIATE, one writer) with synchronous FULL and NORMAL.
2. Comptoir (target/release/comptoir, one process) on SQLite FULL, SQLite NORMAL and PostgreSQL
   (catalogue and identity stay on SQLite so that the demo seeds them; inventory, orders,
   payments and carts on PostgreSQL), driven by target/release/examples/loadgen: closed-loop
   virtual users, scenario `checkout` (cart, 1-2 random SKUs, checkout) and `flash` (one hot SKU
   with a finite stock). After every point the load generator checks the invariants through the
   API (stock consumed = units sold by 201 answers, hot SKU never negative nor oversold,
   /api/inventory/check consistent).
   Mode `split` (issue 12): the same binary as eight processes — catalog, identity, payments,
   inventory, cart, orders, web, gateway, each `serve --target <one>` — every service on
   PostgreSQL (one schema each in the scratch database), events through RabbitMQ (BENCH_AMQP_URL,
   default amqp://guest:guest@127.0.0.1:5672/%2f), the load through the gateway; its server CPU
   is the sum over the eight processes.
3. Report: bench/out/checkout.json, bench/out/checkout.md and bench/results/<date>-commerce.md.

Environment: BENCH_SECONDS (per point, default 8), BENCH_PG_URL (default
postgres://postgres@127.0.0.1:5432/postgres), BENCH_MODES (default sqlite-full,sqlite-normal,postgres,split),
BENCH_CHECKOUT_C (default 8,32,64), BENCH_FLASH_C (default 32,64).
"""
import glob, json, os, re, shutil, signal, sqlite3, statistics, subprocess, sys, tempfile, threading, time
import urllib.parse, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "bench", "out")
RESULTS = os.path.join(ROOT, "bench", "results")
BIN = os.path.join(ROOT, "target", "release", "comptoir")
LOADGEN = os.path.join(ROOT, "target", "release", "examples", "loadgen")
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
WARMUP = 1.0
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
MODES = os.environ.get("BENCH_MODES", "sqlite-full,sqlite-normal,postgres,split").split(",")
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
# start order of the split topology: a peer before whoever calls it
SPLIT = ["catalog", "identity", "payments", "inventory", "cart", "orders", "web", "gateway"]
CHECKOUT_C = [int(c) for c in os.environ.get("BENCH_CHECKOUT_C", "8,32,64").split(",")]
FLASH_C = [int(c) for c in os.environ.get("BENCH_FLASH_C", "32,64").split(",")]
PORT = 18500
APP_DB = "comptoir_bench"
CALIB_DB = "comptoir_bench_calib"
HEAD_OFFICE = "direction@breizhsport.example"
CLK = os.sysconf("SC_CLK_TCK")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def db_url(name):
    u = urllib.parse.urlsplit(PG_URL)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + name, u.query, u.fragment))


def psql(sql, db="postgres", check=True):
    return subprocess.run(["psql", db_url(db), "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
                          capture_output=True, text=True, check=check, timeout=120)


def recreate_db(name):
    psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql(f"CREATE DATABASE {name}")


def drop_db(name):
    psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", check=False)


def loadavg():
    return [float(x) for x in open("/proc/loadavg").read().split()[:3]]


def fsync_probe(directory):
    """20 x 8 kB O_DSYNC writes: median and max ms (PERFORMANCE.md 4.1.2; noisy when > 2 ms)."""
    path = os.path.join(directory, "fsync-probe.tmp")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_DSYNC, 0o600)
    times = []
    try:
        buf = b"\0" * 8192
        for _ in range(20):
            t = time.perf_counter()
            os.pwrite(fd, buf, 0)
            times.append((time.perf_counter() - t) * 1000)
    finally:
        os.close(fd)
        os.unlink(path)
    return {"median_ms": round(statistics.median(times), 3), "max_ms": round(max(times), 3)}


def machine():
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "0")
    kernel = os.uname().release
    pg = psql("SHOW server_version").stdout.strip()
    pg_conf = {k: psql(f"SHOW {k}").stdout.strip() for k in
               ["shared_buffers", "max_connections", "synchronous_commit", "fsync", "wal_sync_method"]}
    return {"cpus": os.cpu_count(), "cpu_model": model, "mem_gib": round(int(mem) / 1048576, 1),
            "kernel": kernel, "postgres": pg, "postgres_settings": pg_conf,
            "sqlite": sqlite3.sqlite_version}


# ---- baselines --------------------------------------------------------------------------------

PG_SCHEMA = """
CREATE TABLE stock (sku int PRIMARY KEY, available int NOT NULL, reserved int NOT NULL DEFAULT 0,
                    updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE orders (id bigserial PRIMARY KEY, sku int NOT NULL REFERENCES stock, qty int NOT NULL,
                     amount_cents int NOT NULL, status text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE outbox (id bigserial PRIMARY KEY, aggregate_id bigint NOT NULL, event_type text NOT NULL,
                     payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), published_at timestamptz);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
INSERT INTO stock (sku, available) SELECT g, 100000000 FROM generate_series(1, 10000) g;
VACUUM ANALYZE stock;
"""

PG_TXN = """BEGIN;
UPDATE stock SET available = available - 1, updated_at = now() WHERE sku = :sku AND available >= 1;
INSERT INTO orders (sku, qty, amount_cents, status) VALUES (:sku, 1, 1999, 'confirmed') RETURNING id \\gset
INSERT INTO outbox (aggregate_id, event_type, payload) VALUES (:id, 'OrderPlaced', jsonb_build_object('order_id', (:id)::bigint, 'sku', (:sku)::int, 'qty', 1, 'amount_cents', 1999));
COMMIT;
"""


def pgbench(work, name, clients, seconds):
    script = os.path.join(work, f"{name}.sql")
    sku = "\\set sku random(1, 10000)" if name == "uniform" else "\\set sku 1"
    open(script, "w").write(sku + "\n" + PG_TXN)
    logdir = os.path.join(work, f"pgbench-{name}-{clients}")
    os.makedirs(logdir, exist_ok=True)
    psql("CHECKPOINT", db=CALIB_DB)
    env = dict(os.environ, PGOPTIONS="-c synchronous_commit=on")
    r = subprocess.run(["pgbench", "-n", "-M", "prepared", "-f", script, "-c", str(clients), "-j", "2",
                        "-T", str(int(seconds)), "-l", f"--log-prefix={logdir}/log", db_url(CALIB_DB)],
                       capture_output=True, text=True, env=env, timeout=seconds + 120)
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", r.stdout)
    if r.returncode != 0 or not m:
        return {"error": (r.stderr or r.stdout)[-800:]}
    lat = []
    for f in glob.glob(f"{logdir}/log*"):
        for line in open(f):
            parts = line.split()
            if len(parts) >= 3:
                lat.append(int(parts[2]) / 1000)
    lat.sort()
    pick = lambda p: round(lat[min(len(lat) - 1, max(0, int(len(lat) * p / 100 + 0.999999) - 1))], 2) if lat else None
    failed = re.search(r"number of failed transactions: (\d+)", r.stdout)
    return {"tps": round(float(m.group(1)), 1), "p50_ms": pick(50), "p90_ms": pick(90), "p99_ms": pick(99),
            "transactions": len(lat), "failed": int(failed.group(1)) if failed else 0}


def sqlite_baseline(work, synchronous, seconds):
    """The same three statements in python3 sqlite3: WAL, BEGIN IMMEDIATE, one writer, uniform SKU."""
    path = os.path.join(work, f"lite-{synchronous}.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.executescript("""
        CREATE TABLE stock (sku INTEGER PRIMARY KEY, available INTEGER NOT NULL, reserved INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, sku INTEGER NOT NULL REFERENCES stock, qty INTEGER NOT NULL, amount_cents INTEGER NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL);
        CREATE TABLE outbox (id INTEGER PRIMARY KEY, aggregate_id INTEGER NOT NULL, event_type TEXT NOT NULL, payload TEXT NOT NULL, created_at INTEGER NOT NULL, published_at INTEGER);
        CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
    """)
    db.execute("BEGIN")
    db.executemany("INSERT INTO stock (sku, available, updated_at) VALUES (?, 100000000, 0)", ((i,) for i in range(1, 10001)))
    db.execute("COMMIT")
    import random
    rnd = random.Random(1)
    n, lat = 0, []
    end = time.perf_counter() + seconds
    while True:
        t = time.perf_counter()
        if t >= end:
            break
        sku = rnd.randint(1, 10000)
        now = int(time.time() * 1000)
        db.execute("BEGIN IMMEDIATE")
        db.execute("UPDATE stock SET available = available - 1, updated_at = ? WHERE sku = ? AND available >= 1", (now, sku))
        oid = db.execute("INSERT INTO orders (sku, qty, amount_cents, status, created_at) VALUES (?, 1, 1999, 'confirmed', ?) RETURNING id", (sku, now)).fetchone()[0]
        db.execute("INSERT INTO outbox (aggregate_id, event_type, payload, created_at) VALUES (?, 'OrderPlaced', json_object('order_id', ?, 'sku', ?, 'qty', 1, 'amount_cents', 1999), ?)", (oid, oid, sku, now))
        db.execute("COMMIT")
        lat.append((time.perf_counter() - t) * 1000)
        n += 1
    db.close()
    lat.sort()
    return {"tps": round(n / seconds, 1), "p50_ms": round(lat[len(lat) // 2], 3),
            "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 3), "transactions": n}


# ---- Comptoir ---------------------------------------------------------------------------------

class Server:
    def __init__(self, work, mode):
        self.mode = mode
        self.dir = os.path.join(work, mode)
        os.makedirs(self.dir, exist_ok=True)
        self.env = dict(os.environ,
                        COMPTOIR_LOG__LEVEL="warn",
                        COMPTOIR_RATE_LIMIT__PER_IP_PER_MINUTE="0",
                        COMPTOIR_RATE_LIMIT__PER_ACCOUNT_PER_MINUTE="0",
                        COMPTOIR_RATE_LIMIT__PER_KEY_PER_MINUTE="0",
                        COMPTOIR_RATE_LIMIT__PER_KEY_PER_HOUR="0",
                        COMPTOIR_DATA__SQLITE_SYNCHRONOUS="normal" if mode == "sqlite-normal" else "full")
        if mode == "postgres":
            for svc in ("INVENTORY", "ORDERS", "PAYMENTS", "CART"):
                self.env[f"COMPTOIR_{svc}__DATABASE_URL"] = db_url(APP_DB)
        self.proc = None
        self.password = None
        self.stdout_lines = []

    def start(self):
        if self.mode == "postgres":
            recreate_db(APP_DB)
            r = subprocess.run([BIN, "--data-dir", os.path.join(self.dir, "data"), "migrate", "--target", "commerce"],
                               env=self.env, capture_output=True, text=True, timeout=120)
            if r.returncode != 0:
                raise RuntimeError(f"comptoir migrate: {r.stderr}")
        self.stderr = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen([BIN, "--data-dir", os.path.join(self.dir, "data"), "serve", "--bind",
                                      f"127.0.0.1:{PORT}"], env=self.env, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True)
        deadline = time.time() + 180
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"comptoir exited {self.proc.returncode}: {open(self.stderr.name).read()[-2000:]}")
                continue
            self.stdout_lines.append(line)
            if HEAD_OFFICE in line:
                self.password = line.split()[-1]
                break
        if not self.password:
            raise RuntimeError("no head office password printed")
        threading.Thread(target=lambda: [self.stdout_lines.append(l) for l in self.proc.stdout], daemon=True).start()
        end = time.time() + 60
        while time.time() < end:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except Exception:
                pass
            time.sleep(0.2)
        raise RuntimeError("/readyz did not answer 200")

    def stop(self, drop=True):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and not self.stderr.closed:
            self.stderr.close()
        if self.mode == "postgres" and drop:
            drop_db(APP_DB)

    def problems(self):
        """Panics and error lines the server logged."""
        path = os.path.join(self.dir, "server.log")
        text = open(path, errors="replace").read() if os.path.exists(path) else ""
        lines = text.splitlines()
        panics = [l for l in lines if "panicked" in l]
        errors = [l for l in lines if " ERROR " in l or '"level":"ERROR"' in l]
        warns = [l for l in lines if " WARN " in l or '"level":"WARN"' in l]
        return {"panics": len(panics), "errors": len(errors), "warnings": len(warns),
                "samples": (panics[:3] + errors[:5] + warns[:3])}

    def rss_mib(self):
        try:
            for l in open(f"/proc/{self.proc.pid}/status"):
                if l.startswith("VmRSS"):
                    return round(int(l.split()[1]) / 1024, 1)
        except FileNotFoundError:
            pass
        return None


class SplitServer(Server):
    """The eight processes; `proc` is the gateway (the address the load generator uses)."""

    def __init__(self, work, mode):
        super().__init__(work, mode)
        for svc in ("CATALOG", "IDENTITY", "INVENTORY", "ORDERS", "PAYMENTS", "CART"):
            self.env[f"COMPTOIR_{svc}__DATABASE_URL"] = db_url(APP_DB)
        self.env.update(COMPTOIR_AUTH__INTERNAL_SECRET="bench-internal-secret-0123456789abcdef0123",
                        COMPTOIR_AUTH__ISSUER=f"http://127.0.0.1:{PORT}",
                        COMPTOIR_BUS__TRANSPORT="rabbitmq", COMPTOIR_BUS__RABBITMQ_URL=AMQP_URL,
                        COMPTOIR_BUS__PREFIX=f"bench{os.getpid()}")
        self.procs = []

    def start(self):
        recreate_db(APP_DB)
        data = os.path.join(self.dir, "data")
        for sub in (["migrate"], ["demo-data"]):
            r = subprocess.run([BIN, "--data-dir", data] + sub, env=self.env, capture_output=True, text=True, timeout=180)
            if r.returncode != 0:
                raise RuntimeError(f"comptoir {sub[0]}: {r.stderr}")
            for line in r.stdout.splitlines():
                if HEAD_OFFICE in line:
                    self.password = line.split()[-1]
        if not self.password:
            raise RuntimeError("no head office password printed")
        self.stderr = open(os.path.join(self.dir, "server.log"), "w")
        for i, target in enumerate(SPLIT):
            port = PORT if target == "gateway" else PORT + 1 + i
            p = subprocess.Popen([BIN, "--data-dir", data, "serve", "--target", target, "--bind", f"127.0.0.1:{port}"],
                                 env=self.env, stdout=subprocess.DEVNULL, stderr=self.stderr, text=True)
            self.procs.append((target, p))
            end = time.time() + 60
            while True:
                if p.poll() is not None:
                    raise RuntimeError(f"{target} exited {p.returncode}: {open(self.stderr.name).read()[-2000:]}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                        if r.status == 200:
                            break
                except Exception:
                    pass
                if time.time() > end:
                    raise RuntimeError(f"{target}: /readyz did not answer 200")
                time.sleep(0.2)
            if target != "gateway" and target != "web":
                self.env[f"COMPTOIR_PEERS__{target.upper()}_URL"] = f"http://127.0.0.1:{port}"
        self.proc = self.procs[-1][1]

    def stop(self, drop=True):
        for _, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for _, p in reversed(self.procs):
            try:
                p.wait(timeout=40)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.procs and not self.stderr.closed:
            self.stderr.close()
        if drop:
            drop_db(APP_DB)

    def pids(self):
        return [p.pid for _, p in self.procs]

    def rss_mib(self):
        total = 0.0
        for pid in self.pids():
            try:
                for l in open(f"/proc/{pid}/status"):
                    if l.startswith("VmRSS"):
                        total += int(l.split()[1]) / 1024
            except FileNotFoundError:
                pass
        return round(total, 1)


def thread_cpu(pid):
    """CPU seconds per thread name (tokio workers, sqlx SQLite workers, ...) of a process."""
    out = {}
    for t in glob.glob(f"/proc/{pid}/task/*"):
        try:
            name = open(f"{t}/comm").read().strip()
            f = open(f"{t}/stat").read().rsplit(")", 1)[1].split()
            out[name] = out.get(name, 0) + (int(f[11]) + int(f[12])) / CLK
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return out


def process_cpu(pid):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / CLK
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0


def loadgen(server, scenario, conns, extra):
    pids = server.pids() if isinstance(server, SplitServer) else [server.proc.pid]
    cmd = [LOADGEN, "--base", f"http://127.0.0.1:{PORT}", "--scenario", scenario, "--concurrency", str(conns),
           "--duration", str(SECONDS), "--warmup", str(WARMUP), "--email", HEAD_OFFICE,
           "--password", server.password, "--setup", "--server-pid", str(server.proc.pid)] + extra
    before = thread_cpu(server.proc.pid)
    cpu0 = sum(process_cpu(p) for p in pids)
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=SECONDS + 240)
    after = thread_cpu(server.proc.pid)
    cpu1 = sum(process_cpu(p) for p in pids)
    if r.returncode != 0:
        return {"scenario": scenario, "concurrency": conns, "failed": r.stderr[-2000:]}
    out = json.loads(r.stdout)
    if len(pids) > 1:
        # every process of the topology, over the whole loadgen run (setup and checks included)
        out["all_processes_cpu_s"] = round(cpu1 - cpu0, 2)
        out["all_processes_wall_s"] = round(time.time() - t0, 2)
    # whole loadgen run (setup and checks included): where the server's CPU went
    out["server_thread_cpu_s"] = {k: round(v - before.get(k, 0), 2) for k, v in after.items() if v - before.get(k, 0) > 0}
    return out


def run_mode(work, mode):
    log(f"== Comptoir, {mode}")
    s = SplitServer(work, mode) if mode == "split" else Server(work, mode)
    points = []
    pg_before = pg_after = None
    try:
        t0 = time.time()
        s.start()
        if mode in ("postgres", "split"):
            pg_before = pg_stats()
        log(f"   started in {time.time() - t0:.1f} s (pid {s.proc.pid})")
        for c in CHECKOUT_C:
            r = loadgen(s, "checkout", c, ["--skus", "500", "--topup", "100000"])
            r["mode"] = mode
            points.append(r)
            log(f"   checkout c{c}: " + brief(r))
        ref = next((p for p in points if p.get("concurrency") == 32 and "orders_per_s" in p), None) \
            or next((p for p in points if "orders_per_s" in p), None)
        rate = ref["orders_per_s"] if ref else 100
        # finite stock sized to sell out at about 70 % of the run at the checkout rate
        stock = int(max(500, rate * (SECONDS + WARMUP) * 0.7))
        for c in FLASH_C:
            r = loadgen(s, "flash", c, ["--stock", str(stock)])
            r["mode"] = mode
            points.append(r)
            log(f"   flash c{c} (stock {stock}): " + brief(r))
        problems = s.problems()
        rss = s.rss_mib()
    except Exception as e:  # a broken start is a result too
        log(f"   {mode} failed: {e}")
        return {"mode": mode, "error": str(e)[-2000:], "points": points,
                "server": s.problems() if s.proc else None}
    finally:
        if mode in ("postgres", "split") and pg_before:
            s.stop(drop=False)
            time.sleep(1)
            pg_after = pg_stats()
        s.stop()
    out = {"mode": mode, "points": points, "server": problems, "rss_mib": rss}
    if pg_before and pg_after:
        calls = sum(sum(v for k, v in p.get("by_status_all", {}).items() if not k.startswith(("cart", "add line")))
                    for p in points)
        orders = sum(p.get("orders_total", 0) for p in points)
        d = {k: pg_after[k] - pg_before[k] for k in pg_before}
        out["pg_stats"] = {"delta": d, "checkout_calls": calls, "orders": orders}
    return out


def pg_stats():
    """Cumulative counters of the Comptoir database (flushed when the server's connections close)."""
    r = psql(f"SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted, tup_fetched "
             f"FROM pg_stat_database WHERE datname = '{APP_DB}'", check=False)
    vals = r.stdout.strip().split("|")
    if len(vals) != 6:
        return None
    return dict(zip(["commits", "rollbacks", "inserted", "updated", "deleted", "fetched"], map(int, vals)))


def brief(r):
    if "failed" in r:
        return "FAILED " + r["failed"].strip().splitlines()[-1][:300]
    inv = r.get("invariants", {})
    return (f"{r['orders_per_s']} orders/s (sale {r['sale_rate_per_s']}), checkout p50 {r['checkout_ms']['p50']} "
            f"p99 {r['checkout_ms']['p99']} ms, {r['by_status']}, invariants {'ok' if inv.get('ok') else inv.get('violations')}")


# ---- report -----------------------------------------------------------------------------------

def fmt(v, nd=1):
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def ratio(a, b):
    return round(a / b, 2) if a is not None and b else None


def point(modes, mode, scenario, c):
    for m in modes:
        if m["mode"] == mode:
            for p in m["points"]:
                if p.get("scenario") == scenario and p.get("concurrency") == c and "orders_per_s" in p:
                    return p
    return None


def report(rep):
    b = rep["baselines"]
    modes = rep["comptoir"]
    m = rep["machine"]
    lines = ["# Checkout and flash-sale benchmark (issue 4)", "",
             f"Run {rep['when']}. Machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['mem_gib']} GiB, Linux {m['kernel']}; "
             f"PostgreSQL {m['postgres']} (shared instance of the machine: shared_buffers {m['postgres_settings']['shared_buffers']}, "
             f"synchronous_commit {m['postgres_settings']['synchronous_commit']}), SQLite {m['sqlite']} (python3 and Comptoir on the same ext4 disk). "
             f"Load average {rep['load_start']} at start, {rep['load_end']} at the end. "
             f"O_DSYNC 8 kB write probe: median {rep['fsync_start']['median_ms']} ms at start, "
             f"{rep['fsync_end']['median_ms']} ms at the end{' (noisy: > 2 ms)' if max(rep['fsync_start']['median_ms'], rep['fsync_end']['median_ms']) > 2 else ''}. "
             f"{SECONDS:g} s per point after {WARMUP:g} s of warm-up; the load generator runs on the same 2 cores.", "",
             "## Baselines (same run)", "",
             "| baseline | clients | tps | p50 ms | p90 ms | p99 ms |", "|---|---:|---:|---:|---:|---:|"]
    for key, label in [("pg_uniform", "pgbench checkout txn, uniform over 10k SKUs"), ("pg_hot", "pgbench checkout txn, one hot SKU")]:
        for c, r in sorted(b[key].items(), key=lambda kv: int(kv[0])):
            if "error" in r:
                lines.append(f"| {label} | {c} | failed: {r['error'][:120]} | | | |")
            else:
                lines.append(f"| {label} | {c} | {fmt(r['tps'])} | {fmt(r['p50_ms'], 2)} | {fmt(r['p90_ms'], 2)} | {fmt(r['p99_ms'], 2)} |")
    for sync in ("FULL", "NORMAL"):
        r = b[f"sqlite_{sync.lower()}"]
        lines.append(f"| python3 sqlite3, same 3 statements, WAL, synchronous={sync}, one writer | 1 | {fmt(r['tps'])} | {fmt(r['p50_ms'], 3)} | | {fmt(r['p99_ms'], 3)} |")
    lines += ["", "pgbench: `-n -M prepared -j 2`, `synchronous_commit=on`, CHECKPOINT before each run, the transaction of "
              "PERFORMANCE.md (guarded `UPDATE stock`, `INSERT orders … RETURNING id`, `INSERT outbox` with a jsonb payload); "
              "percentiles from its per-transaction log.", "",
              "## Comptoir", "",
              "Each order = `POST /api/carts` + 1–2 × `POST /api/carts/{id}/lines` + `POST /api/checkout` (fresh `Idempotency-Key`, "
              "test card, home delivery from `logistique`); orders/s counts 201 answers in the measured window. "
              "Flash: every user buys 1 unit of one SKU whose available stock was set to a finite amount; its rate is the sale rate "
              "while the stock lasted (units sold ÷ time of the last sale) when it sold out. "
              "Invariants are checked through the API after every point: per SKU, the stock consumed equals the units sold by 201 answers; "
              "the hot SKU is never negative, never oversold, and sold out exactly when 409 `out_of_stock` answers appear; "
              "`GET /api/inventory/check` (counters rebuilt from the ledger) is consistent; after each checkout point one checkout "
              "sent twice with the same `Idempotency-Key` must replay the same order. "
              "Server CPU comes from /proc/<pid>/stat over the measured window; machine busy is the whole box (server, PostgreSQL, load generator).", "",
              "| mode | scenario | users | orders/s | checkout p50 / p90 / p99 ms | whole order p50 / p99 ms | server CPU µs per order flow | machine busy | answers (measured window) | invariants |",
              "|---|---|---:|---:|---|---|---:|---:|---|---|"]
    for mres in modes:
        if "error" in mres:
            lines.append(f"| {mres['mode']} | — | — | start failed: {mres['error'][:200]} | | | | | | |")
        for p in mres["points"]:
            if "failed" in p:
                lines.append(f"| {mres['mode']} | {p['scenario']} | {p['concurrency']} | loadgen failed: {p['failed'].strip().splitlines()[-1][:200]} | | | | | | |")
                continue
            inv = p["invariants"]
            if inv.get("ok"):
                hot = inv.get("hot")
                inv_s = "ok: " + (f"sold {inv['sold_by_201']} of {hot['stock_before']}, left {hot['after']['available']}" + (" (sold out)" if hot["sold_out"] else "")
                                  if hot else f"stock consumed {inv['stock_consumed']} = sold {inv['sold_by_201']}")
            else:
                inv_s = "**VIOLATED**: " + "; ".join(inv.get("violations", []))[:300]
            rate = p["sale_rate_per_s"] if p["scenario"] == "flash" else p["orders_per_s"]
            rate_s = fmt(rate) + (f" (sold out at {p['last_201_s']:.1f} s)" if p["scenario"] == "flash" and p["sale_rate_per_s"] != p["orders_per_s"] else "")
            cm, fm = p["checkout_ms"], p["flow_ms"]
            statuses = ", ".join(f"{k}: {v}" for k, v in p["by_status"].items())
            lines.append(f"| {mres['mode']} | {p['scenario']} | {p['concurrency']} | {rate_s} | {fmt(cm['p50'], 1)} / {fmt(cm['p90'], 1)} / {fmt(cm['p99'], 1)} | "
                         f"{fmt(fm['p50'], 1)} / {fmt(fm['p99'], 1)} | {fmt(p.get('server_cpu_us_per_checkout'), 0)} | {fmt(p.get('machine_busy_pct'), 0)} % | {statuses} | {inv_s} |")
    # ratios
    def rate(mode, scen, c):
        p = point(modes, mode, scen, c)
        if not p:
            return None, None
        return (p["sale_rate_per_s"] if scen == "flash" else p["orders_per_s"]), p
    lines += ["", "## Against the goals (ratios measured in this run)", "",
              "| goal | Comptoir | baseline | ratio | aim | verdict |", "|---|---:|---:|---:|---|---|"]
    verdict = lambda r, aim: "—" if r is None else ("meets" if r >= aim else "below")
    for c in CHECKOUT_C:
        v, p = rate("postgres", "checkout", c)
        base = b["pg_uniform"].get(str(c), {}).get("tps")
        r = ratio(v, base)
        lines.append(f"| G1 checkout, PostgreSQL, c{c}: orders/s ÷ pgbench uniform tps | {fmt(v)} | {fmt(base)} | {fmt(r, 2)} | ≥ 0.6 | {verdict(r, 0.6)} |")
    v, p = rate("postgres", "checkout", 32)
    base = b["pg_uniform"].get("32", {})
    if p and base.get("p99_ms"):
        lines.append(f"| G1 p99 at c32: checkout call p99 ÷ pgbench p99 | {fmt(p['checkout_ms']['p99'])} ms | {fmt(base['p99_ms'], 2)} ms | "
                     f"{fmt(ratio(p['checkout_ms']['p99'], base['p99_ms']), 2)} | ≤ 2 | {'meets' if p['checkout_ms']['p99'] <= 2 * base['p99_ms'] else 'above'} |")
    flash = {}
    for c in FLASH_C:
        v, p = rate("postgres", "flash", c)
        flash[c] = v
        base = b["pg_hot"].get(str(c), {}).get("tps")
        r = ratio(v, base)
        lines.append(f"| G2 flash sale, PostgreSQL, c{c}: sale rate ÷ pgbench hot tps | {fmt(v)} | {fmt(base)} | {fmt(r, 2)} | ≥ 1.0 | {verdict(r, 1.0)} |")
    if flash.get(32) and flash.get(64):
        lines.append(f"| G2 no collapse: flash c64 ÷ c32 (PostgreSQL) | {fmt(flash[64])} | {fmt(flash[32])} | {fmt(ratio(flash[64], flash[32]), 2)} | ≥ 1.0 | {verdict(ratio(flash[64], flash[32]), 1.0)} |")
    for mode in ("sqlite-full", "sqlite-normal"):
        flash = {c: rate(mode, "flash", c)[0] for c in FLASH_C}
        if flash.get(32) and flash.get(64):
            lines.append(f"| G2 no collapse: flash c64 ÷ c32 ({mode}) | {fmt(flash[64])} | {fmt(flash[32])} | {fmt(ratio(flash[64], flash[32]), 2)} | ≥ 1.0 | {verdict(ratio(flash[64], flash[32]), 1.0)} |")
    for mode, key, aim in [("sqlite-full", "sqlite_full", 4.0), ("sqlite-normal", "sqlite_normal", 0.5)]:
        best = max((rate(mode, "checkout", c)[0] or 0 for c in CHECKOUT_C), default=0) or None
        v32 = rate(mode, "checkout", 32)[0]
        base = b[key]["tps"]
        r = ratio(v32, base)
        lines.append(f"| G13 embedded, {mode}, c32: orders/s ÷ python sqlite3 {key.split('_')[1].upper()} rate (best of c{'/c'.join(map(str, CHECKOUT_C))}: {fmt(best)}) | {fmt(v32)} | {fmt(base)} | {fmt(r, 2)} | ≥ {aim:g} | {verdict(r, aim)} |")
    # issue 12: the eight processes against the one process, both on PostgreSQL, same run
    for c in CHECKOUT_C:
        one, p1 = rate("postgres", "checkout", c)
        split, p8 = rate("split", "checkout", c)
        if one and split:
            lines.append(f"| issue 12 split c{c}: eight processes ÷ one process, orders/s (PostgreSQL) | {fmt(split)} | {fmt(one)} | "
                         f"{fmt(ratio(split, one), 2)} | ≥ 0.7 | {verdict(ratio(split, one), 0.7)} |")
            lines.append(f"| issue 12 split c{c}: checkout p99 ms, eight processes vs one | {fmt(p8['checkout_ms']['p99'])} | "
                         f"{fmt(p1['checkout_ms']['p99'])} | {fmt(ratio(p8['checkout_ms']['p99'], p1['checkout_ms']['p99']), 2)} | (reported) | — |")
    for c in FLASH_C:
        one, _ = rate("postgres", "flash", c)
        split, _ = rate("split", "flash", c)
        if one and split:
            lines.append(f"| issue 12 split flash c{c}: sale rate, eight processes ÷ one | {fmt(split)} | {fmt(one)} | "
                         f"{fmt(ratio(split, one), 2)} | (reported) | — |")
    # problems
    lines += ["", "## Server behaviour under load", ""]
    any_problem = False
    for mres in modes:
        srv = mres.get("server") or {}
        errs = {}
        for p in mres["points"]:
            for k, v in (p.get("error_samples") or {}).items():
                errs.setdefault(f"{p['scenario']} c{p['concurrency']}: {k}", v)
            if p.get("invariants") and not p["invariants"].get("ok", True):
                any_problem = True
            if "failed" in p:
                any_problem = True
                errs.setdefault(f"{p['scenario']} c{p['concurrency']}: load generator failed", [p["failed"].strip()[-400:]])
        if srv.get("panics") or srv.get("errors") or errs or "error" in mres:
            any_problem = True
        cpu = {}
        for p in mres["points"]:
            for k, v in (p.get("server_thread_cpu_s") or {}).items():
                cpu[k] = cpu.get(k, 0) + v
        total = sum(cpu.values())
        cpu_s = ", ".join(f"{k} {100 * v / total:.0f} %" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1])) if total else "—"
        split_cpu = sum(p.get("all_processes_cpu_s", 0) for p in mres["points"])
        split_orders = sum(p.get("orders_total", 0) for p in mres["points"])
        if split_cpu and split_orders:
            lines.append(f"- **{mres['mode']}**: all eight processes used {split_cpu:.1f} s of CPU for {split_orders} orders over the runs "
                         f"(setup and checks included): {1e6 * split_cpu / split_orders:.0f} µs per order; the per-thread figures below are the gateway's.")
        lines.append(f"- **{mres['mode']}**: server log: {srv.get('panics', 0)} panics, {srv.get('errors', 0)} ERROR lines, "
                     f"{srv.get('warnings', 0)} WARN lines; resident memory at the end {fmt(mres.get('rss_mib'))} MiB; "
                     f"server CPU by thread over the runs ({total:.1f} s): {cpu_s}.")
        pgs = mres.get("pg_stats")
        if pgs and pgs["checkout_calls"]:
            d, n = pgs["delta"], pgs["checkout_calls"]
            lines.append(f"  - PostgreSQL work per checkout call (all answers, setup included, {n} calls, {pgs['orders']} orders; "
                         f"pg_stat_database of the commerce database): {d['commits'] / n:.1f} commits, {d['rollbacks'] / n:.2f} rollbacks, "
                         f"{d['inserted'] / n:.1f} rows inserted, {d['updated'] / n:.1f} updated, {d['deleted'] / n:.1f} deleted.")
        for k, v in errs.items():
            lines.append(f"  - {k} — e.g. `{v[0][:400]}`")
        for smp in srv.get("samples", [])[:6]:
            lines.append(f"  - log: `{smp[:300]}`")
    if not any_problem:
        lines.append("- No 5xx, no transport error, no panic, no invariant violation.")
    lines += ["", f"Command: `bench/checkout.sh` (release build; pgbench and python3 sqlite3 baselines in the same run). "
              f"Raw figures: `bench/out/checkout.json`."]
    return "\n".join(lines) + "\n"


def main():
    for f in (BIN, LOADGEN):
        if not os.path.exists(f):
            sys.exit(f"{f} is missing: run bench/checkout.sh")
    os.makedirs(OUT, exist_ok=True)
    work = tempfile.mkdtemp(prefix="comptoir-checkout-bench-", dir=os.path.join(ROOT, "target"))
    rep = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds_per_point": SECONDS,
           "load_start": loadavg(), "fsync_start": fsync_probe(work), "machine": machine()}
    try:
        log("== baselines")
        recreate_db(CALIB_DB)
        schema = os.path.join(work, "calib-schema.sql")
        open(schema, "w").write(PG_SCHEMA)
        subprocess.run(["psql", db_url(CALIB_DB), "-v", "ON_ERROR_STOP=1", "-q", "-f", schema],
                       check=True, capture_output=True, timeout=300)
        b = {"pg_uniform": {}, "pg_hot": {}}
        for c in CHECKOUT_C:
            b["pg_uniform"][str(c)] = pgbench(work, "uniform", c, SECONDS)
            log(f"   pgbench uniform c{c}: {b['pg_uniform'][str(c)]}")
        for c in FLASH_C:
            b["pg_hot"][str(c)] = pgbench(work, "hot", c, SECONDS)
            log(f"   pgbench hot c{c}: {b['pg_hot'][str(c)]}")
        drop_db(CALIB_DB)
        for sync in ("FULL", "NORMAL"):
            b[f"sqlite_{sync.lower()}"] = sqlite_baseline(work, sync, SECONDS / 2)
            log(f"   python sqlite3 {sync}: {b['sqlite_' + sync.lower()]}")
        rep["baselines"] = b
        rep["comptoir"] = [run_mode(work, mode) for mode in MODES]
        rep["load_end"] = loadavg()
        rep["fsync_end"] = fsync_probe(work)
    finally:
        drop_db(CALIB_DB)
        drop_db(APP_DB)
        shutil.rmtree(work, ignore_errors=True)
    md = report(rep)
    json.dump(rep, open(os.path.join(OUT, "checkout.json"), "w"), indent=2)
    open(os.path.join(OUT, "checkout.md"), "w").write(md)
    os.makedirs(RESULTS, exist_ok=True)
    open(os.path.join(RESULTS, time.strftime("%Y-%m-%d") + "-commerce.md"), "w").write(md)
    print(md)


if __name__ == "__main__":
    main()
