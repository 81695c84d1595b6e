#!/usr/bin/env python3
"""Catalogue read benchmark (issue: foundation; PERFORMANCE.md G4).

For each scenario and concurrency: wrk against Comptoir, then wrk against nginx serving the very
same bytes as a static file, back to back in the same run, so that the ratio means something on a
shared, noisy machine. Server CPU per request comes from /proc/<pid>/stat (utime+stime).
Writes bench/out/report.json and bench/out/report.md.
"""
import json, os, re, shutil, signal, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "bench", "out")
BIN = os.path.join(ROOT, "target", "release", "comptoir")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CONCURRENCIES = [int(c) for c in os.environ.get("BENCH_CONCURRENCY", "16,64,256").split(",")]
DURATION = int(os.environ.get("BENCH_SECONDS", "6"))
CLK = os.sysconf("SC_CLK_TCK")
APP_PORT, NGINX_PORT = 18080, 18081

SCENARIOS = [
    ("product list", "/api/catalog/products?limit=24"),
    ("product by slug", None),  # filled in from the list
    ("text filter", "/api/catalog/products?q=veste%20impermeable&limit=24"),
]


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except FileNotFoundError:
            pass
    return total / CLK


def children(pid):
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]
    except Exception:
        return []


def to_ms(s):
    m = re.match(r"([\d.]+)(us|ms|s)", s)
    if not m:
        return None
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v if u == "ms" else v * 1000


def wrk(url, conns, pids, own=None):
    """wrk against `url`; CPU per request of `pids` (and of `own`, a subset, apart)."""
    threads = 2 if conns >= 2 else 1
    before = cpu_seconds(pids)
    own_before = cpu_seconds(own) if own else 0.0
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{conns}", f"-d{DURATION}s", "--latency", url],
        capture_output=True, text=True, timeout=DURATION + 60,
    ).stdout
    cpu = cpu_seconds(pids) - before
    own_cpu = (cpu_seconds(own) - own_before) if own else None
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = to_ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = to_ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    return {
        "rps": rps, "p50_ms": p50, "p99_ms": p99, "requests": total, "errors": errors,
        "cpu_us_per_req": (cpu * 1e6 / total) if total else None,
        "own_cpu_us_per_req": (own_cpu * 1e6 / total) if (total and own_cpu is not None) else None,
    }


def wait_ready(url, deadline=60):
    end = time.time() + deadline
    while time.time() < end:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.2)
    sys.exit(f"{url} did not become ready")


def machine():
    load = open("/proc/loadavg").read().split()[:3]
    return {"cpus": os.cpu_count(), "loadavg": load}


def main():
    os.makedirs(OUT, exist_ok=True)
    work = tempfile.mkdtemp(prefix="comptoir-bench-")
    os.chmod(work, 0o755)  # nginx workers run as an unprivileged user
    # wrk sends everything from one address: lift the per-address limit (0 disables it), or the
    # benchmark would measure 429s
    env = dict(os.environ, COMPTOIR_LOG__LEVEL="warn", COMPTOIR_RATE_LIMIT__PER_IP_PER_MINUTE="0")
    app = subprocess.Popen(
        [BIN, "--data-dir", os.path.join(work, "data"), "serve", "--bind", f"127.0.0.1:{APP_PORT}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    nginx = None
    try:
        base = f"http://127.0.0.1:{APP_PORT}"
        wait_ready(base + "/readyz")
        first = json.load(urllib.request.urlopen(base + "/api/catalog/products?limit=1"))
        slug = first["items"][0]["slug"]
        scenarios = [(n, p or f"/api/catalog/products/{slug}") for n, p in SCENARIOS]

        # nginx serves the same bytes as static files
        html = os.path.join(work, "html")
        os.makedirs(html)
        files = {}
        for i, (name, path) in enumerate(scenarios):
            body = urllib.request.urlopen(base + path).read()
            fname = f"s{i}.json"
            open(os.path.join(html, fname), "wb").write(body)
            files[name] = (fname, len(body))
        conf = os.path.join(work, "nginx.conf")
        open(conf, "w").write(f"""
worker_processes auto; pid {work}/nginx.pid; error_log {work}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{ access_log off; sendfile on; tcp_nodelay on; keepalive_requests 1000000;
  open_file_cache max=100; default_type application/json;
  server {{ listen 127.0.0.1:{NGINX_PORT}; root {html}; }} }}
""")
        nginx = subprocess.Popen([NGINX, "-c", conf, "-p", work, "-g", "daemon off;"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ready(f"http://127.0.0.1:{NGINX_PORT}/s0.json")
        nginx_pids = children(nginx.pid) + [nginx.pid]

        start_machine = machine()
        results = []
        for name, path in scenarios:
            # warm-up: fills the cache and the connection pools
            wrk_warm = subprocess.run(["wrk", "-t1", "-c8", "-d1s", base + path], capture_output=True)
            for c in CONCURRENCIES:
                app_r = wrk(base + path, c, [app.pid])
                ngx_r = wrk(f"http://127.0.0.1:{NGINX_PORT}/{files[name][0]}", c, nginx_pids)
                row = {
                    "scenario": name, "path": path, "bytes": files[name][1], "connections": c,
                    "comptoir": app_r, "nginx": ngx_r,
                    "ratio": app_r["rps"] / ngx_r["rps"] if ngx_r["rps"] else None,
                }
                results.append(row)
                print(f"{name:16} c{c:<4} comptoir {app_r['rps']:9.0f} req/s p99 {app_r['p99_ms']:7.2f} ms"
                      f" | nginx {ngx_r['rps']:9.0f} req/s p99 {ngx_r['p99_ms']:7.2f} ms | ratio {row['ratio']:.2f}",
                      flush=True)
        report = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "duration_seconds": DURATION,
            "machine_start": start_machine, "machine_end": machine(),
            "goal": "G4: cached product read >= 0.5 x nginx throughput, p99 <= 10 ms",
            "results": results,
        }
        json.dump(report, open(os.path.join(OUT, "report.json"), "w"), indent=2)
        lines = [
            "| scenario | bytes | conns | Comptoir req/s | p50 ms | p99 ms | CPU µs/req | nginx req/s | nginx p99 ms | nginx CPU µs/req | ratio |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results:
            a, n = r["comptoir"], r["nginx"]
            lines.append(
                f"| {r['scenario']} | {r['bytes']} | {r['connections']} | {a['rps']:.0f} | {a['p50_ms']:.2f} | "
                f"{a['p99_ms']:.2f} | {a['cpu_us_per_req']:.0f} | {n['rps']:.0f} | {n['p99_ms']:.2f} | "
                f"{n['cpu_us_per_req']:.0f} | {r['ratio']:.2f} |")
        errs = sum(r["comptoir"]["errors"] + r["nginx"]["errors"] for r in results)
        lines.append("")
        lines.append(f"errors: {errs}; load average start {start_machine['loadavg']} end {report['machine_end']['loadavg']}; "
                     f"{DURATION} s per run, wrk -t2, client and servers on the same 2-core machine")
        open(os.path.join(OUT, "report.md"), "w").write("\n".join(lines) + "\n")
        print("\n".join(lines))
    finally:
        app.send_signal(signal.SIGTERM)
        if nginx:
            nginx.send_signal(signal.SIGQUIT)
        try:
            app.wait(timeout=30)
        except subprocess.TimeoutExpired:
            app.kill()
        if nginx:
            try:
                nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                nginx.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
