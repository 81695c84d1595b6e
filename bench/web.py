#!/usr/bin/env python3
"""Web pages benchmark (issue 5; PERFORMANCE.md G6).

The storefront's catalogue (category listing, 24 cards), search results and product pages, rendered
by Comptoir, against nginx serving the very same HTML saved as static files: wrk back to back at
each concurrency in the same run, so the ratio means something on a shared machine. Also the
weight of each page: HTML + the CSS and scripts it links (images apart), raw and gzip -6.
Writes bench/out/web.json and bench/out/web.md.
"""
import gzip, json, os, re, shutil, signal, subprocess, tempfile, time, urllib.request

import run  # wrk(), wait_ready(), children(), machine() of the catalogue benchmark

ROOT = run.ROOT
OUT = run.OUT
CONCURRENCIES = [int(c) for c in os.environ.get("BENCH_CONCURRENCY", "16,64,256").split(",")]
APP_PORT, NGINX_PORT = 18090, 18091


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def weight(base, html):
    text = html.decode()
    assets = re.findall(r'<link rel="stylesheet" href="(/[^"]+)"', text) + re.findall(r'<script src="(/[^"]+)"', text)
    parts = {"html": len(html)}
    gz = {"html": len(gzip.compress(html, 6))}
    for a in assets:
        body = fetch(base + a)
        kind = "css" if a.endswith(".css") else "js"
        parts[kind] = parts.get(kind, 0) + len(body)
        gz[kind] = gz.get(kind, 0) + len(gzip.compress(body, 6))
    return {"raw": parts, "gzip": gz, "total": sum(parts.values()), "total_gzip": sum(gz.values())}


def main():
    os.makedirs(OUT, exist_ok=True)
    work = tempfile.mkdtemp(prefix="comptoir-web-bench-")
    os.chmod(work, 0o755)
    env = dict(os.environ, COMPTOIR_LOG__LEVEL="warn", COMPTOIR_RATE_LIMIT__PER_IP_PER_MINUTE="0",
               COMPTOIR_WEB__PER_IP_PER_MINUTE="0")
    app = subprocess.Popen(
        [run.BIN, "--data-dir", os.path.join(work, "data"), "serve", "--bind", f"127.0.0.1:{APP_PORT}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    nginx = None
    try:
        base = f"http://127.0.0.1:{APP_PORT}"
        run.wait_ready(base + "/readyz")
        listing = fetch(base + "/fr/c/chaussures-running").decode()
        slug = re.search(r'href="/fr/p/([^"]+)"', listing).group(1)
        scenarios = [
            ("catalogue page", "/fr/c/chaussures-running"),
            ("search page", "/fr/search?q=veste"),
            ("product page", f"/fr/p/{slug}"),
            ("home page", "/fr/"),
        ]
        html_dir = os.path.join(work, "html")
        os.makedirs(html_dir)
        files, weights = {}, {}
        for i, (name, path) in enumerate(scenarios):
            body = fetch(base + path)
            fname = f"p{i}.html"
            open(os.path.join(html_dir, fname), "wb").write(body)
            files[name] = (fname, len(body))
            weights[name] = weight(base, body)
        conf = os.path.join(work, "nginx.conf")
        open(conf, "w").write(f"""
worker_processes auto; pid {work}/nginx.pid; error_log {work}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{ access_log off; sendfile on; tcp_nodelay on; keepalive_requests 1000000;
  open_file_cache max=100; default_type text/html;
  server {{ listen 127.0.0.1:{NGINX_PORT}; root {html_dir}; }} }}
""")
        nginx = subprocess.Popen([run.NGINX, "-c", conf, "-p", work, "-g", "daemon off;"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run.wait_ready(f"http://127.0.0.1:{NGINX_PORT}/p0.html")
        nginx_pids = run.children(nginx.pid) + [nginx.pid]
        start_machine = run.machine()
        results = []
        for name, path in scenarios[:3]:
            subprocess.run(["wrk", "-t1", "-c8", "-d1s", base + path], capture_output=True)
            for c in CONCURRENCIES:
                a = run.wrk(base + path, c, [app.pid])
                n = run.wrk(f"http://127.0.0.1:{NGINX_PORT}/{files[name][0]}", c, nginx_pids)
                row = {"scenario": name, "path": path, "bytes": files[name][1], "connections": c,
                       "comptoir": a, "nginx": n, "ratio": a["rps"] / n["rps"] if n["rps"] else None}
                results.append(row)
                print(f"{name:15} c{c:<4} comptoir {a['rps']:8.0f} req/s p99 {a['p99_ms']:7.2f} ms"
                      f" | nginx {n['rps']:8.0f} req/s p99 {n['p99_ms']:7.2f} ms | ratio {row['ratio']:.2f}",
                      flush=True)
        report = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "duration_seconds": run.DURATION,
                  "machine_start": start_machine, "machine_end": run.machine(),
                  "goal": "pages >= 0.5 x nginx serving the same HTML; weight < 100 KB before images",
                  "results": results, "weights": weights}
        json.dump(report, open(os.path.join(OUT, "web.json"), "w"), indent=2)
        lines = [
            "| page | HTML bytes | conns | Comptoir req/s | p50 ms | p99 ms | CPU µs/req | nginx req/s | nginx p99 ms | ratio |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results:
            a, n = r["comptoir"], r["nginx"]
            lines.append(f"| {r['scenario']} | {r['bytes']} | {r['connections']} | {a['rps']:.0f} | {a['p50_ms']:.2f} | "
                         f"{a['p99_ms']:.2f} | {a['cpu_us_per_req']:.0f} | {n['rps']:.0f} | {n['p99_ms']:.2f} | {r['ratio']:.2f} |")
        errs = sum(r["comptoir"]["errors"] + r["nginx"]["errors"] for r in results)
        lines += ["", f"errors: {errs}; load average start {start_machine['loadavg']} end {report['machine_end']['loadavg']}; "
                      f"{run.DURATION} s per run, wrk -t2, client and servers on the same 2-core machine", "",
                  "| page | HTML | CSS | JS | total | total gzip -6 |", "|---|---:|---:|---:|---:|---:|"]
        for name, w in weights.items():
            r = w["raw"]
            lines.append(f"| {name} | {r.get('html', 0)} | {r.get('css', 0)} | {r.get('js', 0)} | {w['total']} | {w['total_gzip']} |")
        open(os.path.join(OUT, "web.md"), "w").write("\n".join(lines) + "\n")
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
