"""Identity benchmark (see bench/auth.sh). Writes bench/out/auth.json and bench/out/auth.md."""
import json, os, re, subprocess, sys, tempfile, threading, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "bench", "out")
BIN = os.path.join(ROOT, "target", "release", "comptoir")
EXAMPLE = os.path.join(ROOT, "target", "release", "examples", "auth_bench")
PORT = 18391
SECONDS = 6


def wrk(url, conns, script=None):
    cmd = ["wrk", "-t2", f"-c{conns}", f"-d{SECONDS}s", "--latency"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=SECONDS + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": round(rps), "p50_ms": round(pct(50), 2), "p99_ms": round(pct(99), 2),
            "non_2xx": int(non2xx.group(1)) if non2xx else 0}


def openssl_ed25519():
    out = subprocess.run(["openssl", "speed", "-seconds", "3", "ed25519"],
                         capture_output=True, text=True, timeout=60).stdout
    line = [l for l in out.splitlines() if "Ed25519" in l and "bits" in l][-1]
    nums = re.findall(r"[\d.]+", line.split(")")[-1])
    return {"sign_per_s": float(nums[-2]), "verify_per_s": float(nums[-1])}


def main():
    os.makedirs(OUT, exist_ok=True)
    micro = json.loads(subprocess.run([EXAMPLE], capture_output=True, text=True, check=True).stdout)
    baseline = openssl_ed25519()
    work = tempfile.mkdtemp(prefix="comptoir-auth-bench-")
    env = dict(os.environ, COMPTOIR_LOG__LEVEL="warn", COMPTOIR_RATE_LIMIT__PER_IP_PER_MINUTE="0")
    app = subprocess.Popen([BIN, "--data-dir", os.path.join(work, "data"), "serve", "--bind",
                            f"127.0.0.1:{PORT}"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        password = None
        deadline = time.time() + 120
        while time.time() < deadline:
            line = app.stdout.readline()
            if "direction@breizhsport.example" in line:
                password = line.split()[-1]
                break
        if not password:
            sys.exit("no head office password printed")
        base = f"http://127.0.0.1:{PORT}"
        first = json.load(urllib.request.urlopen(base + "/api/catalog/products?limit=1"))
        read_url = base + "/api/catalog/products/" + first["items"][0]["slug"]
        script = os.path.join(work, "signin.lua")
        open(script, "w").write(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.body = \'{{"email":"direction@breizhsport.example","password":"{password}"}}\'\n')
        load = [float(x) for x in open("/proc/loadavg").read().split()[:3]]
        reads_alone = wrk(read_url, 16)
        signin_alone = wrk(base + "/api/identity/sessions", 16, script)
        both = {}
        t1 = threading.Thread(target=lambda: both.__setitem__("reads", wrk(read_url, 16)))
        t2 = threading.Thread(target=lambda: both.__setitem__("signin", wrk(base + "/api/identity/sessions", 16, script)))
        t1.start(); t2.start(); t1.join(); t2.join()
        load_after = [float(x) for x in open("/proc/loadavg").read().split()[:3]]
    finally:
        app.terminate()
        app.wait(timeout=30)
    report = {"cpus": os.cpu_count(), "loadavg_before": load, "loadavg_after": load_after,
              "micro": micro, "openssl_ed25519": baseline,
              "reads_alone": reads_alone, "signin_alone": signin_alone,
              "reads_during_signin_flood": both["reads"], "signin_during_reads": both["signin"]}
    v2 = max(x["per_s"] for x in micro["token_verify_per_s"])
    v1 = [x["per_s"] for x in micro["token_verify_per_s"] if x["tasks"] == 1][0]
    md = [
        "# Identity benchmark", "",
        f"Machine: {os.cpu_count()} CPUs, load {load} → {load_after}. wrk -t2 -c16, {SECONDS} s per run.", "",
        "## Token verification (in process, release)", "",
        "| what | per second | baseline | ratio |", "|---|---:|---:|---:|",
        f"| full access-token check, 1 task (parse, EdDSA, claims, cached session) | {v1:.0f} | OpenSSL raw Ed25519 verify, 1 thread: {baseline['verify_per_s']:.0f} | {v1 / baseline['verify_per_s']:.2f} |",
        f"| same, 2 tasks | {v2:.0f} | | |",
        f"| token signing, 1 thread | {micro['token_sign_per_s_1_thread']:.0f} | OpenSSL raw Ed25519 sign: {baseline['sign_per_s']:.0f} | {micro['token_sign_per_s_1_thread'] / baseline['sign_per_s']:.2f} |",
        "", "## Sign-in cost (argon2id m=19456 KiB, t=2, p=1)", "",
        f"- hash {micro['argon2id_hash_ms']} ms, verify {micro['argon2id_verify_ms']} ms on one core; "
        f"{micro['argon2id_verify_per_s_2_threads']} verifications/s on two threads.", "",
        "| run | req/s | p50 ms | p99 ms | non-2xx |", "|---|---:|---:|---:|---:|",
    ]
    for name, r in [("catalogue read alone", reads_alone), ("sign-in alone", signin_alone),
                    ("catalogue read during a sign-in flood", both["reads"]),
                    ("sign-in during catalogue reads", both["signin"])]:
        md.append(f"| {name} | {r['rps']} | {r['p50_ms']} | {r['p99_ms']} | {r['non_2xx']} |")
    md += ["", f"Catalogue reads kept {both['reads']['rps'] / reads_alone['rps']:.2f} of their "
           "throughput while sign-ins were flooding (hashing bounded to auth.max_concurrent_hashes)."]
    json.dump(report, open(os.path.join(OUT, "auth.json"), "w"), indent=2)
    open(os.path.join(OUT, "auth.md"), "w").write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
