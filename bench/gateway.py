#!/usr/bin/env python3
"""Gateway benchmark (issue 13): one catalogue read, three ways, in the same run, wrk back to
back at each concurrency:

- direct: from the catalog process (`serve --target catalog,identity`, SQLite, demo data);
- gateway: through `serve --target gateway` in front of it (authentication, balancing, its
  cache off, so that every request is proxied; the per-address plan is off: one client address
  sends tens of thousands of requests a second, beyond any plan);
- nginx: through nginx (Debian package) configured as a plain reverse proxy in front of the
  same process (keep-alive upstream connections, no access log).

Aims: the gateway at least 0.8 of the direct rate and at least nginx's rate; its p99 within
2 ms of direct at 64 connections. Then the bytes on the wire of the catalogue page (through the
web pages of the one process) and of a 100-product JSON list, plain and with each encoding.

Environment: BENCH_SECONDS (per run, default 6), BENCH_CONCURRENCY (default 16,64,256).
"""
import json, os, signal, subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # wrk(), wait_ready(), children(), machine()

PORT_SERVICES, PORT_GATEWAY, PORT_NGINX, PORT_ONE = 18610, 18611, 18612, 18613
PATH = "/api/catalog/products?limit=24"
SECRET = "a-benchmark-internal-secret-0123456789abcdef"


def start(args, env, port, data):
    os.makedirs(data, exist_ok=True)
    e = dict(os.environ, COMPTOIR_LOG__LEVEL="warn", COMPTOIR_AUTH__INTERNAL_SECRET=SECRET,
             COMPTOIR_AUTH__ISSUER="http://bench.test", COMPTOIR_RATE_LIMIT__PER_IP_PER_MINUTE="0")
    e.update(env)
    p = subprocess.Popen([run.BIN, "--data-dir", data] + args + ["--bind", f"127.0.0.1:{port}"],
                         env=e, stdout=subprocess.DEVNULL, stderr=open(os.path.join(data, "log"), "w"))
    run.wait_ready(f"http://127.0.0.1:{port}/readyz", deadline=120)
    return p


def wire_bytes(url, encoding):
    req = urllib.request.Request(url, headers={"Accept-Encoding": encoding} if encoding else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
        return len(body), r.headers.get("Content-Encoding") or "identity"


def main():
    if not os.path.exists(run.BIN):
        sys.exit(f"{run.BIN} is missing: run bench/gateway.sh")
    work = tempfile.mkdtemp(prefix="comptoir-gateway-bench-", dir=os.path.join(run.ROOT, "target"))
    procs, nginx = [], None
    rep = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": run.machine(), "path": PATH,
           "seconds": run.DURATION, "rows": []}
    try:
        services = start(["serve", "--target", "catalog,identity"], {}, PORT_SERVICES,
                         os.path.join(work, "services"))
        procs.append(services)
        peers = {f"COMPTOIR_PEERS__{s}_URL": f"http://127.0.0.1:{PORT_SERVICES}"
                 for s in ("CATALOG", "IDENTITY")}
        # the services the gateway is not benchmarked on still need an address
        for s in ("INVENTORY", "CART", "ORDERS", "PAYMENTS"):
            peers[f"COMPTOIR_PEERS__{s}_URL"] = f"http://127.0.0.1:{PORT_SERVICES}"
        gateway = start(["serve", "--target", "gateway"],
                        dict(peers, COMPTOIR_GATEWAY__CACHE_ENTRIES="0"), PORT_GATEWAY,
                        os.path.join(work, "gateway"))
        procs.append(gateway)
        conf = os.path.join(work, "nginx.conf")
        open(conf, "w").write(f"""
worker_processes auto; pid {work}/nginx.pid; error_log {work}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  upstream comptoir {{ server 127.0.0.1:{PORT_SERVICES}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{PORT_NGINX};
    location / {{
      proxy_pass http://comptoir;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }}
  }}
}}
""")
        nginx = subprocess.Popen([run.NGINX, "-c", conf, "-p", work, "-g", "daemon off;"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run.wait_ready(f"http://127.0.0.1:{PORT_NGINX}/readyz")
        nginx_pids = run.children(nginx.pid) + [nginx.pid]
        ways = {
            "direct": (f"http://127.0.0.1:{PORT_SERVICES}{PATH}", [services.pid], None),
            "gateway": (f"http://127.0.0.1:{PORT_GATEWAY}{PATH}", [gateway.pid, services.pid],
                        [gateway.pid]),
            "nginx": (f"http://127.0.0.1:{PORT_NGINX}{PATH}", nginx_pids + [services.pid],
                      nginx_pids),
        }
        for url, _, _ in ways.values():
            subprocess.run(["wrk", "-t1", "-c8", "-d1s", url], capture_output=True)
        for c in run.CONCURRENCIES:
            row = {"conns": c}
            for name, (url, pids, own) in ways.items():
                row[name] = run.wrk(url, c, pids, own)
                print(f"c{c} {name}: {row[name]['rps']:.0f} req/s p99 {row[name]['p99_ms']:.2f} ms "
                      f"errors {row[name]['errors']}", file=sys.stderr, flush=True)
            rep["rows"].append(row)
        # bytes on the wire: the list through the gateway, the catalogue page of the one process
        one = start(["serve"], {}, PORT_ONE, os.path.join(work, "one"))
        procs.append(one)
        wire = []
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT_ONE}/api/catalog/categories", timeout=10) as r:
            cats = json.load(r)
        items = cats.get("items", cats) if isinstance(cats, dict) else cats
        slug = items[0]["slug"] if items else "x"
        for label, url in [("100-product JSON list (gateway)",
                            f"http://127.0.0.1:{PORT_GATEWAY}/api/catalog/products?limit=100"),
                           (f"catalogue page /fr/c/{slug} (one process)",
                            f"http://127.0.0.1:{PORT_ONE}/fr/c/{slug}")]:
            sizes = {}
            for enc in ("", "gzip", "br", "zstd"):
                try:
                    n, got = wire_bytes(url, enc)
                    sizes[enc or "identity"] = (n, got)
                except Exception as e:  # a page that is not there is a result too
                    sizes[enc or "identity"] = (None, str(e)[:80])
            wire.append((label, sizes))
        rep["wire"] = wire
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except Exception:
                p.kill()
        if nginx:
            nginx.send_signal(signal.SIGQUIT)
            try:
                nginx.wait(timeout=10)
            except Exception:
                nginx.kill()
    md = report(rep)
    os.makedirs(run.OUT, exist_ok=True)
    json.dump(rep, open(os.path.join(run.OUT, "gateway.json"), "w"), indent=2, default=str)
    open(os.path.join(run.ROOT, "bench", "results", time.strftime("%Y-%m-%d") + "-gateway.md"), "w").write(md)
    print(md)


def report(rep):
    lines = ["# Gateway benchmark (issue 13)", "",
             f"Run {rep['when']}; {rep['machine']['cpus']} CPUs, load average {rep['machine']['loadavg']} at start. "
             f"`GET {rep['path']}` (24 products, JSON, the catalogue's in-process cache warm), wrk -t2, "
             f"{rep['seconds']} s per run, the three ways back to back at each concurrency; client, proxies and "
             f"the catalog process on the same 2 cores. The gateway's edge cache is off (every request proxied), its "
             f"per-address plan is off (one address sends more than any plan allows), its access log is at "
             f"`warn` (off); nginx is a plain reverse proxy (keep-alive upstream, no access log). A proxy's own CPU "
             f"is the time its processes spent, user and kernel, per request answered.", "",
             "| conns | direct req/s | p99 ms | gateway req/s | p99 ms | nginx req/s | p99 ms | gateway ÷ direct | gateway ÷ nginx | gateway p99 − direct p99 | CPU µs/req: catalog direct | gateway's own | nginx's own |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rep["rows"]:
        d, g, n = r["direct"], r["gateway"], r["nginx"]
        lines.append(f"| {r['conns']} | {d['rps']:.0f} | {d['p99_ms']:.2f} | {g['rps']:.0f} | {g['p99_ms']:.2f} | "
                     f"{n['rps']:.0f} | {n['p99_ms']:.2f} | "
                     f"{g['rps'] / d['rps']:.2f} | {g['rps'] / n['rps']:.2f} | {g['p99_ms'] - d['p99_ms']:+.2f} ms | "
                     f"{(d['cpu_us_per_req'] or 0):.0f} | {(g['own_cpu_us_per_req'] or 0):.0f} | "
                     f"{(n['own_cpu_us_per_req'] or 0):.0f} |")
    errs = sum(r[w]["errors"] for r in rep["rows"] for w in ("direct", "gateway", "nginx"))
    lines += ["", f"Errors (non-2xx or socket) over every run: {errs}.", "",
              "Aims: gateway ≥ 0.8 × direct; gateway ≥ nginx; p99 within 2 ms of direct at 64 connections.", "",
              "## Bytes on the wire", "", "| answer | identity | gzip | br | zstd |", "|---|---:|---:|---:|---:|"]
    for label, sizes in rep.get("wire", []):
        cells = []
        for enc in ("identity", "gzip", "br", "zstd"):
            n, got = sizes[enc]
            cells.append("—" if n is None else (f"{n}" if got == enc or enc == "identity" else f"{n} ({got})"))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Command: `bench/gateway.sh` (release build). Raw: `bench/out/gateway.json`."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
