#!/usr/bin/env python3
"""Load benchmark of the Ekai Gateway against the in-repo mock provider (issue 7).

Run through `bench/run` (which installs wrk and builds the release binaries); this script only
orchestrates: it starts the mock (core 1) and the gateway (core 0), drives wrk (core 1) for each
case direct-to-mock then through-the-gateway, measures time to first byte, CPU per request, RSS and
start-up time, and writes docs/benchmarks.md. Standard library only.
"""

import argparse
import datetime
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GW_CORE, LOAD_CORE = "0", "1"
KEY = "sk-bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# ---------------------------------------------------------------- requests

PROMPT = [{"role": "user", "content": "Say hello in one short sentence."}]
OAI_HEADERS = {"Authorization": f"Bearer {KEY}"}
ANT_HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}


def oai_body(model, stream):
    b = {"model": model, "messages": PROMPT, "max_tokens": 64}
    if stream:
        b["stream"] = True
    return b


def oai_upstream_body(model, stream):
    """What the gateway sends OpenAI for that request: a stream asks for its usage chunk (accounting)."""
    b = oai_body(model, stream)
    if stream:
        b["stream_options"] = {"include_usage": True}
    return b


def ant_body(model, stream):
    b = {"model": model, "max_tokens": 64, "messages": PROMPT}
    if stream:
        b["stream"] = True
    return b


# name -> (label, direct (path, body, headers), gateway (path, body, headers))
CASES = {
    "openai_json": (
        "OpenAI chat, JSON (`gpt-4o-mini`)",
        ("/v1/chat/completions", oai_body("gpt-4o-mini", False), OAI_HEADERS),
        ("/v1/chat/completions", oai_body("gpt-4o-mini", False), OAI_HEADERS),
    ),
    "openai_stream": (
        "OpenAI chat, streaming (`gpt-4o-mini`)",
        ("/v1/chat/completions", oai_upstream_body("gpt-4o-mini", True), OAI_HEADERS),
        ("/v1/chat/completions", oai_body("gpt-4o-mini", True), OAI_HEADERS),
    ),
    "anthropic_stream": (
        "Anthropic messages, streaming (`claude-haiku-4-5`)",
        ("/v1/messages", ant_body("claude-haiku-4-5-20251001", True), ANT_HEADERS),
        ("/v1/messages", ant_body("claude-haiku-4-5", True), ANT_HEADERS),
    ),
    "cross_json": (
        "Cross-dialect: OpenAI client → `claude-haiku-4-5`, JSON",
        # direct = what the provider is sent: the same request in the Anthropic dialect
        ("/v1/messages", ant_body("claude-haiku-4-5-20251001", False), ANT_HEADERS),
        ("/v1/chat/completions", oai_body("claude-haiku-4-5", False), OAI_HEADERS),
    ),
}
REALISTIC = "@delay=50,chunk-delay=20"
CASES["openai_stream_realistic"] = (
    f"OpenAI chat, streaming, realistic upstream (`gpt-4o-mini{REALISTIC}`)",
    ("/v1/chat/completions", oai_upstream_body("gpt-4o-mini" + REALISTIC, True), OAI_HEADERS),
    ("/v1/chat/completions", oai_body("gpt-4o-mini" + REALISTIC, True), OAI_HEADERS),
)

AB_NAMES = ("ledger on (SQLite), RUST_LOG=info, open mode",
            "ledger off (DATABASE_URL=none), RUST_LOG=info, open mode",
            "ledger on (SQLite), RUST_LOG=warn — no per-request log line, open mode")

# Keys mode for the main runs: a client key created with `ekai-gateway keys create`.
MASTER = "bench-master-key-0123456789abcdefghijklmnop"

TARGETS = {
    "added_p50_c1": 100.0,  # µs
    "added_p99_c1": 500.0,  # µs
    "rps_c64": 15000.0,
    "added_ttfb": 200.0,  # µs
    "peak_rss": 50.0,  # MB
    "idle_rss": 20.0,  # MB
    "ledger_diff": 5.0,  # %
    "startup": 100.0,  # ms
}


# ---------------------------------------------------------------- processes


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.args} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.005)
    raise RuntimeError(f"port {port} not listening after {timeout}s")


def stop(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Mock:
    def __init__(self, binary, port, logdir):
        self.binary, self.port, self.logdir, self.proc = binary, port, logdir, None

    def start(self):
        # A fresh mock per measurement pair: the mock records every request in memory, forever.
        stop(self.proc)
        out = open(os.path.join(self.logdir, "mock.log"), "ab")
        self.proc = subprocess.Popen(
            ["taskset", "-c", LOAD_CORE, self.binary, "--port", str(self.port), "--api-key", KEY],
            stdout=out, stderr=out)
        wait_port(self.port, self.proc)

    def stop(self):
        stop(self.proc)


class Relay:
    """A do-nothing TCP relay (socat) on the gateway's core in front of the mock: the floor any proxy
    on this machine pays for the extra hop (two more loopback connections and cross-core wake-ups)."""

    def __init__(self, mock_port, logdir):
        self.port = free_port()
        out = open(os.path.join(logdir, "relay.log"), "ab")
        self.proc = subprocess.Popen(
            ["taskset", "-c", GW_CORE, "socat",
             f"TCP-LISTEN:{self.port},fork,reuseaddr,nodelay,bind=127.0.0.1",
             f"TCP:127.0.0.1:{mock_port},nodelay"],
            stdout=out, stderr=out)
        wait_port(self.port, self.proc)

    def headers(self, headers):
        return headers

    def stop(self):
        stop(self.proc)


def gateway_env(mock_port, port, db_url, rust_log=None):
    env = {k: v for k, v in os.environ.items()
           if not (k.endswith("_API_KEY") or k.startswith("EKAI_") or k in ("DATABASE_URL", "RUST_LOG"))}
    env.update({
        "OPENAI_API_KEY": KEY,
        "ANTHROPIC_API_KEY": KEY,
        "EKAI_OPENAI_BASE_URL": f"http://127.0.0.1:{mock_port}/v1",
        "EKAI_ANTHROPIC_BASE_URL": f"http://127.0.0.1:{mock_port}",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_URL": db_url,
    })
    if rust_log:
        env["RUST_LOG"] = rust_log
    return env


class Gateway:
    def __init__(self, binary, mock_port, workdir, name, db_url, rust_log=None, keys=False):
        self.port = free_port()
        self.name = name
        os.makedirs(workdir, exist_ok=True)
        self.logpath = os.path.join(workdir, f"gateway-{name}.log")
        out = open(self.logpath, "ab")
        env = gateway_env(mock_port, self.port, db_url, rust_log)
        self.key = None
        if keys:
            # The client key every request of this gateway carries (keys mode, as deployed).
            env.update({"EKAI_MASTER_KEY": MASTER, "EKAI_AUTH_MODE": "keys"})
            r = subprocess.run([binary, "keys", "create", "--name", f"bench-{name}"], env=env, cwd=workdir,
                               capture_output=True, text=True)
            words = [w for w in r.stdout.split() if w.startswith("ek-")]
            if r.returncode != 0 or not words:
                raise RuntimeError(f"keys create failed: {r.stdout}\n{r.stderr}")
            self.key = words[0]
        # cwd = an empty temp dir, so no .env file is picked up
        self.proc = subprocess.Popen(
            ["taskset", "-c", GW_CORE, binary],
            env=env, cwd=workdir,
            stdout=out, stderr=out)
        wait_port(self.port, self.proc)

    def headers(self, headers):
        """The request headers with this gateway's client key in place of the provider key."""
        if not self.key:
            return headers
        h = dict(headers)
        if "x-api-key" in h:
            h["x-api-key"] = self.key
        else:
            h["Authorization"] = f"Bearer {self.key}"
        return h

    def cpu_ticks(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15)

    def status_kb(self, key):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def threads(self):
        return self.status_kb("Threads")

    def stop(self):
        stop(self.proc)


def cpu_times():
    """Per-core (busy, total) jiffies from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                p = line.split()
                v = list(map(int, p[1:]))
                idle = v[3] + v[4]
                out[p[0]] = (sum(v[:8]) - idle, sum(v[:8]))
    return out


def busy_pct(a, b, core):
    (b0, t0), (b1, t1) = a[core], b[core]
    return 100.0 * (b1 - b0) / max(1, t1 - t0)


# ---------------------------------------------------------------- wrk


def wrk(port, spec, conns, duration, workdir, tag):
    path, body, headers = spec
    body_file = os.path.join(workdir, f"{tag}.json")
    with open(body_file, "w") as f:
        json.dump(body, f)
    out = os.path.join(workdir, f"{tag}.out.json")
    env = dict(os.environ, BENCH_BODY_FILE=body_file, BENCH_OUT=out,
               BENCH_HEADERS="|".join(f"{k}: {v}" for k, v in headers.items()))
    cmd = ["taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{conns}", f"-d{duration}s",
           "--timeout", "10s", "-s", os.path.join(ROOT, "bench", "wrk.lua"),
           f"http://127.0.0.1:{port}{path}"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0 or not os.path.exists(out):
        raise RuntimeError(f"wrk failed: {r.stdout}\n{r.stderr}")
    with open(out) as f:
        res = json.load(f)
    os.unlink(out)
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    res["errors"] = sum(res[k] for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout"))
    return res


def measure(port, spec, conns, duration, workdir, tag, gw=None, warmup=1):
    if gw:
        spec = (spec[0], spec[1], gw.headers(spec[2]))
    wrk(port, spec, conns, warmup, workdir, tag + "-warm")
    c0 = cpu_times()
    t0 = gw.cpu_ticks() if gw else 0
    res = wrk(port, spec, conns, duration, workdir, tag)
    c1 = cpu_times()
    res["cpu0_busy"] = busy_pct(c0, c1, "cpu0")
    res["cpu1_busy"] = busy_pct(c0, c1, "cpu1")
    if gw:
        ticks = gw.cpu_ticks() - t0
        res["gw_cpu_s"] = ticks / CLK_TCK
        res["gw_cpu_us_per_req"] = 1e6 * res["gw_cpu_s"] / max(1, res["requests"])
        res["gw_core_pct"] = 100.0 * res["gw_cpu_s"] / (res["duration_us"] / 1e6)
        res["gw_hwm_kb"] = gw.status_kb("VmHWM")
        res["gw_rss_kb"] = gw.status_kb("VmRSS")
    return res


# ---------------------------------------------------------------- TTFB


def stream_once(conn, path, body, headers):
    """One streaming request on a keep-alive connection: (headers_s, first_event_s)."""
    t0 = time.perf_counter()
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    t_head = time.perf_counter()
    if resp.status != 200:
        raise RuntimeError(f"status {resp.status}: {resp.read()[:300]!r}")
    first = resp.read1(65536)
    t_first = time.perf_counter()
    if not first:
        raise RuntimeError("empty stream")
    resp.read()
    return t_head - t0, t_first - t0


def ttfb(mock_port, gw, case, n):
    _, dspec, gspec = CASES[case]
    gspec = (gspec[0], gspec[1], gw.headers(gspec[2]))
    sides = {}
    for side, port, (path, body, headers) in (("direct", mock_port, dspec), ("gateway", gw.port, gspec)):
        h = dict(headers, **{"Content-Type": "application/json"})
        conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sides[side] = (conn, path, json.dumps(body).encode(), h)
    res = {s: {"head": [], "first": []} for s in sides}
    for _ in range(20):  # warm-up
        for s, (conn, path, body, h) in sides.items():
            stream_once(conn, path, body, h)
    for _ in range(n):  # interleaved, so drift in background load hits both sides alike
        for s, (conn, path, body, h) in sides.items():
            a, b = stream_once(conn, path, body, h)
            res[s]["head"].append(a * 1e6)
            res[s]["first"].append(b * 1e6)
    for conn, *_ in sides.values():
        conn.close()
    out = {}
    for s in res:
        for k in ("head", "first"):
            v = sorted(res[s][k])
            out[f"{s}_{k}_p50"] = v[len(v) // 2]
            out[f"{s}_{k}_p99"] = v[min(len(v) - 1, int(len(v) * 0.99))]
    return out


# ---------------------------------------------------------------- wake-ups

HALT_POLL = "/sys/module/haltpoll/parameters/guest_halt_poll_ns"


def wakeup_diagnostic(args, mock, mock_port, gw, work):
    """The c=1 floor and TTFB again with the guest's cpuidle `haltpoll` driver polling for
    `args.halt_poll_ns` before it halts an idle vCPU; the old value is restored whatever happens.
    A diagnostic of where c=1 time goes (waking a halted vCPU), not the headline figures."""
    try:
        with open(HALT_POLL) as f:
            old = f.read().strip()
        with open(HALT_POLL, "w") as f:
            f.write(str(args.halt_poll_ns))
    except OSError as e:
        log(f"--halt-poll-ns: cannot set {HALT_POLL} ({e}); the wake-up diagnostic is skipped")
        return None
    out = {"ns": args.halt_poll_ns, "was": old}
    try:
        mock.start()
        _, dspec, gspec = CASES["openai_json"]
        out["direct"] = measure(mock_port, dspec, 1, args.duration, work, "hp-direct")
        if shutil.which("socat"):
            relay = Relay(mock_port, work)
            try:
                out["relay"] = measure(relay.port, dspec, 1, args.duration, work, "hp-relay")
            finally:
                relay.stop()
        out["gateway"] = measure(gw.port, gspec, 1, args.duration, work, "hp-gw", gw=gw)
        out["ttfb"] = {case: ttfb(mock_port, gw, case, args.ttfb_n) for case in ("openai_stream", "anthropic_stream")}
        log(f"halt-poll {args.halt_poll_ns} ns, c=1 p50: direct {out['direct']['lat_p50_us']} "
            f"gateway {out['gateway']['lat_p50_us']} µs")
    finally:
        with open(HALT_POLL, "w") as f:
            f.write(old)
    return out


# ---------------------------------------------------------------- start-up


def startup_once(binary, mock_port, workdir):
    port = free_port()
    db = os.path.join(workdir, f"startup-{port}.db")
    body = json.dumps(oai_body("gpt-4o-mini", False)).encode()
    hdr = dict(OAI_HEADERS, **{"Content-Type": "application/json"})
    out = open(os.path.join(workdir, "gateway-startup.log"), "ab")
    t0 = time.perf_counter()
    proc = subprocess.Popen(["taskset", "-c", GW_CORE, binary],
                            env=gateway_env(mock_port, port, f"sqlite://{db}"), cwd=workdir,
                            stdout=out, stderr=out)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError("gateway exited during start-up")
            if time.perf_counter() - t0 > 10:
                raise RuntimeError("gateway not serving after 10 s")
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("POST", "/v1/chat/completions", body=body, headers=hdr)
                r = c.getresponse()
                r.read()
                c.close()
                if r.status == 200:
                    return (time.perf_counter() - t0) * 1000.0
            except (OSError, http.client.HTTPException):
                time.sleep(0.001)
    finally:
        stop(proc)


# ---------------------------------------------------------------- report


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return {
        "nproc": subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip(),
        "cpu": cpu,
        "mem_gb": mem_kb / 1024 / 1024,
        "kernel": platform.release(),
        "wrk": subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
        if shutil.which("wrk") else "?",
        "cpuidle": read_text("/sys/devices/system/cpu/cpuidle/current_driver"),
        "halt_poll_ns": read_text(HALT_POLL),
    }


def read_text(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def ms(us):
    return f"{us / 1000:.3f}"


def verdict(ok):
    return "**met**" if ok else "**not met**"


# The three ways to the mock the floor and wake-up tables compare.
PATHS = (("direct to the mock", "direct"), ("through socat (floor)", "relay"), ("through the gateway", "gateway"))


def render(R, args):
    m = R["machine"]
    L = []
    w = L.append
    w("# Benchmarks")
    w("")
    w("<!-- generated by bench/run; edit bench/bench.py, not this file -->")
    w("")
    if R["noisy"]:
        w("> **Noisy figures.** This run shared its 2 cores with other work (see the load average and the per-run")
        w("> core busy figures below). Treat absolute numbers")
        w("> as indicative, compare direct vs gateway within a row (they run back to back), and rerun on a quiet")
        w("> machine with the command below before drawing conclusions.")
        w("")
    w(f"- Date: {R['date']}")
    w(f"- Commit: `{R['commit']}`")
    w(f"- Machine: {m['nproc']} cores, {m['cpu']}, {m['mem_gb']:.1f} GB RAM, Linux {m['kernel']}; {m['wrk']}")
    if m.get("cpuidle"):
        hp = f", `guest_halt_poll_ns` = {m['halt_poll_ns']}" if m.get("halt_poll_ns") is not None else ""
        w(f"- cpuidle driver: `{m['cpuidle']}`{hp} (see *Wake-ups* below when 0)")
    w(f"- Load average before / after: {R['load_before']} / {R['load_after']}")
    w(f"- Command: `{R['command']}` (from the repository root; `bench/run --help` for options)")
    w(f"- Duration per measurement: {args.duration} s after a 1 s warm-up; wrk with 1 thread, keep-alive connections.")
    w("")
    w("## Set-up")
    w("")
    w(f"- Gateway (release) pinned to core {GW_CORE} (`taskset -c {GW_CORE}`; its tokio runtime therefore runs one")
    w(f"  worker). Mock provider (release) and wrk pinned to core {LOAD_CORE}.")
    w("- Gateway configuration: the default (routing on, cost strategy), OpenAI and Anthropic keys pointing at the mock")
    w("  through `EKAI_OPENAI_BASE_URL` / `EKAI_ANTHROPIC_BASE_URL`, usage ledger on SQLite in a temp dir,")
    w("  `RUST_LOG` unset (= `info`; with the ledger on, the per-request `ekai::usage` line is debug-level).")
    w("- **Keys mode**: the main runs use a client key created with `ekai-gateway keys create` (HMAC check,")
    w("  rate-limit admission and the client's id on every ledger row). The ledger on/off comparison runs in open")
    w("  mode on three fresh gateways (keys mode needs the database). The mock checks the provider key")
    w("  the gateway sends.")
    w("- A fresh mock is started for each direct/gateway pair (the mock keeps every request in memory).")
    w("- Direct = wrk straight to the mock with the request the provider would receive; for the cross-dialect")
    w("  case that is the equivalent Anthropic Messages request (`/v1/messages`), since that is what the gateway")
    w("  sends upstream; for OpenAI streams it asks for the usage chunk (`stream_options.include_usage`), as the")
    w("  gateway does for its accounting (with the mock's 20 ms between chunks that chunk alone costs 20 ms).")
    w("- Latency for streams is wrk's time to the *end* of the stream; time to first byte is measured separately.")
    w("- Gateway CPU/request = (utime+stime of the gateway process over the run, from `/proc/PID/stat`) / requests;")
    w("  tick resolution is 10 ms, so it is meaningful for runs of thousands of requests. \"1-core capacity\" is")
    w("  1 / (CPU per request): what the gateway could serve with its core to itself.")
    w("")

    # targets
    t = R["targets"]
    w("## Targets (issue 7)")
    w("")
    w("| figure | target | measured | |")
    w("|---|---|---|---|")
    for row in t:
        w(f"| {row[0]} | {row[1]} | {row[2]} | {verdict(row[3]) if row[3] is not None else 'n/a'} |")
    w("")

    w("## Throughput and latency per case")
    w("")
    w("Latencies in ms. *added* = gateway − direct at the same percentile. core0/core1 = how busy each core was")
    w("during the gateway run (all processes, including other people's).")
    w("")
    w("| case | c | direct req/s | gateway req/s | direct p50 | gw p50 | added p50 | direct p99 | gw p99 | added p99 | gw CPU/req (µs) | 1-core capacity (req/s) | core0 / core1 busy | gw RSS after (MB) | errors d/g |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in R["runs"]:
        d, g = r["direct"], r["gateway"]
        cap = 1e6 / g["gw_cpu_us_per_req"] if g["gw_cpu_us_per_req"] > 0 else 0
        w(f"| {r['label']} | {r['c']} | {d['rps']:,.0f} | {g['rps']:,.0f} | {ms(d['lat_p50_us'])} | {ms(g['lat_p50_us'])} | "
          f"{ms(g['lat_p50_us'] - d['lat_p50_us'])} | {ms(d['lat_p99_us'])} | {ms(g['lat_p99_us'])} | "
          f"{ms(g['lat_p99_us'] - d['lat_p99_us'])} | {g['gw_cpu_us_per_req']:.0f} | {cap:,.0f} | "
          f"{g['cpu0_busy']:.0f}% / {g['cpu1_busy']:.0f}% | {g['gw_rss_kb'] / 1024:.0f} | {d['errors']}/{g['errors']} |")
    w("")

    w("## Added time to first byte (streams)")
    w("")
    w(f"{args.ttfb_n} sequential requests per side on one keep-alive connection each (Python `http.client`, on core")
    w(f"{LOAD_CORE}), direct and gateway interleaved request by request, after 20 warm-up requests each. *headers* = request")
    w("sent → response headers read; *first event* = request sent → first body chunk read (the gateway commits a")
    w("stream only after the first upstream event, so both include that event). In µs.")
    w("")
    w("| case | direct headers p50 | gw headers p50 | direct first event p50 | gw first event p50 | **added first event p50** | direct first event p99 | gw first event p99 | added p99 |")
    w("|---|---|---|---|---|---|---|---|---|")
    for case, x in R["ttfb"].items():
        w(f"| {CASES[case][0]} | {x['direct_head_p50']:.0f} | {x['gateway_head_p50']:.0f} | {x['direct_first_p50']:.0f} | "
          f"{x['gateway_first_p50']:.0f} | **{x['gateway_first_p50'] - x['direct_first_p50']:.0f}** | "
          f"{x['direct_first_p99']:.0f} | {x['gateway_first_p99']:.0f} | {x['gateway_first_p99'] - x['direct_first_p99']:.0f} |")
    w("")

    fl = R.get("floor")
    if fl:
        w("## The floor: what any proxy pays on this machine")
        w("")
        w(f"The same request (OpenAI JSON, c=1) direct to the mock, through `socat` (a C byte relay doing nothing")
        w(f"else) pinned to core {GW_CORE} like the gateway, and through the gateway, back to back. The relay adds two")
        w("loopback connections and, per request, wake-ups across the two cores (in this VM an idle vCPU halts and")
        w("waking it goes through the hypervisor); the direct run has wrk and the mock on one core and pays none of it.")
        w("So the gateway's own share of the added latency is *gateway − relay*.")
        w("")
        w("| path | req/s | p50 ms | p90 ms | p99 ms |")
        w("|---|---|---|---|---|")
        for name, key in PATHS:
            x = fl[key]
            w(f"| {name} | {x['rps']:,.0f} | {ms(x['lat_p50_us'])} | {ms(x['lat_p90_us'])} | {ms(x['lat_p99_us'])} |")
        if fl.get("ttfb"):
            x = fl["ttfb"]
            w("")
            w(f"Time to first byte of an OpenAI stream through socat: {x['gateway_first_p50']:.0f} µs p50 against"
              f" {x['direct_first_p50']:.0f} µs direct (+{x['gateway_first_p50'] - x['direct_first_p50']:.0f} µs).")
        w("")

    hp = R.get("halt_poll")
    if hp:
        w("## Wake-ups: the c=1 figures with the guest's halt-polling on")
        w("")
        w(f"At c=1 every request crosses the cores four times (wrk → gateway → mock → gateway → wrk), and each time")
        w(f"the other vCPU has gone idle. This VM's cpuidle driver is `haltpoll` with `guest_halt_poll_ns` ="
          f" {hp['was']}: an idle vCPU halts at once and waking it goes through the hypervisor. The same")
        w(f"measurements with `guest_halt_poll_ns` = {hp['ns']} (the kernel's default: poll that long before halting;")
        w("set for these runs only, then restored; `bench/run --halt-poll-ns N`) show how much of the c=1 figure")
        w("is that wake-up rather than the gateway's work. The headline figures above are with the machine as found.")
        w("")
        w("| path (OpenAI JSON, c=1) | req/s | p50 ms | p90 ms | p99 ms | added p50 ms | gw CPU/req (µs) |")
        w("|---|---|---|---|---|---|---|")
        d = hp["direct"]
        for name, key in PATHS:
            x = hp.get(key)
            if not x:
                continue
            cpu = f"{x['gw_cpu_us_per_req']:.0f}" if "gw_cpu_us_per_req" in x else ""
            w(f"| {name} | {x['rps']:,.0f} | {ms(x['lat_p50_us'])} | {ms(x['lat_p90_us'])} | {ms(x['lat_p99_us'])} | "
              f"{ms(x['lat_p50_us'] - d['lat_p50_us'])} | {cpu} |")
        w("")
        for case, x in hp["ttfb"].items():
            w(f"- Time to first byte, {CASES[case][0]}: {x['gateway_first_p50']:.0f} µs p50 through the gateway against"
              f" {x['direct_first_p50']:.0f} µs direct (**added {x['gateway_first_p50'] - x['direct_first_p50']:.0f} µs**).")
        w("")

    w("## Memory, start-up")
    w("")
    mm = R["memory"]
    w(f"- Idle RSS right after start: {mm['start_rss_kb'] / 1024:.1f} MB; idle after the warm-up requests:"
      f" {mm['idle_rss_kb'] / 1024:.1f} MB; idle after the whole run: {mm['end_rss_kb'] / 1024:.1f} MB.")
    w(f"- Peak RSS (VmHWM) after the c=256 runs: {mm['hwm_c256_kb'] / 1024:.1f} MB"
      f" (threads: {mm['threads']}).")
    s = R["startup"]
    w(f"- Start to first request served (spawn via `taskset`, poll a chat request every ~1 ms until a 200; fresh"
      f" SQLite ledger each time, so its migrations are included): median {statistics.median(s):.1f} ms over"
      f" {len(s)} starts (min {min(s):.1f}, max {max(s):.1f}).")
    w("")

    w("## Ledger and logging (OpenAI JSON, c=64)")
    w("")
    w("Separate gateway processes (same core), measured in alternation, "
      f"{args.ab_rounds} rounds of {args.duration} s each; the figure is the median round.")
    w("")
    w("| variant | req/s (median) | rounds | gw CPU/req (µs, median) | p50 ms | p99 ms | RSS after each round (MB) |")
    w("|---|---|---|---|---|---|---|")
    for name, rows in R["ab"].items():
        rps = [x["rps"] for x in rows]
        med = sorted(rows, key=lambda x: x["rps"])[len(rows) // 2]
        cpu = statistics.median([x["gw_cpu_us_per_req"] for x in rows])
        w(f"| {name} | {statistics.median(rps):,.0f} | {', '.join(f'{v:,.0f}' for v in rps)} | {cpu:.0f} | "
          f"{ms(med['lat_p50_us'])} | {ms(med['lat_p99_us'])} | {', '.join(str(x['gw_rss_kb'] // 1024) for x in rows)} |")
    w("")
    w("## Rerun")
    w("")
    w("```sh")
    w("bench/run                 # full run (~6 min), rewrites docs/benchmarks.md")
    w("bench/run --duration 10   # longer measurements")
    w("bench/run --quick         # c=1 and 64 only, 3 s: a smoke test of the harness")
    w("```")
    w("")
    w(f"Raw results of this run: `{R['raw']}` (JSON, not committed).")
    w("")
    return "\n".join(L)


# ---------------------------------------------------------------- main


def targets(R):
    def run(case, c):
        for r in R["runs"]:
            if r["case"] == case and r["c"] == c:
                return r
        return None

    T = []
    r1 = run("openai_json", 1)
    if r1:
        a50 = r1["gateway"]["lat_p50_us"] - r1["direct"]["lat_p50_us"]
        a99 = r1["gateway"]["lat_p99_us"] - r1["direct"]["lat_p99_us"]
        T.append(("added latency, JSON, c=1, p50", "≤ 0.10 ms", f"{ms(a50)} ms", a50 <= TARGETS["added_p50_c1"]))
        T.append(("added latency, JSON, c=1, p99", "≤ 0.50 ms", f"{ms(a99)} ms", a99 <= TARGETS["added_p99_c1"]))
    fl = R.get("floor")
    if fl:
        rel, gwf, dfl = fl["relay"], fl["gateway"], fl["direct"]
        T.append(("… of which a bare TCP relay (socat) on the gateway core adds, c=1 p50 / p99", "(floor)",
                  f"{ms(rel['lat_p50_us'] - dfl['lat_p50_us'])} / {ms(rel['lat_p99_us'] - dfl['lat_p99_us'])} ms",
                  None))
        T.append(("gateway above that floor, JSON c=1 p50 / p99", "(where the gateway's own time shows)",
                  f"{ms(gwf['lat_p50_us'] - rel['lat_p50_us'])} / {ms(gwf['lat_p99_us'] - rel['lat_p99_us'])} ms",
                  None))
    hp = R.get("halt_poll")
    if hp:
        d, g = hp["direct"], hp["gateway"]
        T.append((f"… with the guest's halt-polling on ({hp['ns']} ns; *Wake-ups* below), JSON c=1 added p50 / p99",
                  "(diagnostic)", f"{ms(g['lat_p50_us'] - d['lat_p50_us'])} / {ms(g['lat_p99_us'] - d['lat_p99_us'])} ms",
                  None))
    r64 = run("openai_json", 64)
    if r64:
        g = r64["gateway"]
        T.append(("throughput, JSON, c=64", "≥ 15,000 req/s",
                  f"{g['rps']:,.0f} req/s (direct: {r64['direct']['rps']:,.0f}; 1-core capacity from CPU/req: "
                  f"{1e6 / g['gw_cpu_us_per_req']:,.0f})", g["rps"] >= TARGETS["rps_c64"]))
    for case, x in R["ttfb"].items():
        a = x["gateway_first_p50"] - x["direct_first_p50"]
        T.append((f"added time to first byte, {case.replace('_', ' ')} (p50)", "≤ 0.20 ms", f"{ms(a)} ms",
                  a <= TARGETS["added_ttfb"]))
    if hp:
        for case, x in hp["ttfb"].items():
            a = x["gateway_first_p50"] - x["direct_first_p50"]
            T.append((f"… with halt-polling on, added time to first byte, {case.replace('_', ' ')} (p50)",
                      "(diagnostic)", f"{ms(a)} ms", None))
    if fl and fl.get("ttfb"):
        x = fl["ttfb"]
        a = x["gateway_first_p50"] - x["direct_first_p50"]
        T.append(("… of which a bare TCP relay (socat) adds, openai stream first byte (p50)", "(floor)",
                  f"{ms(a)} ms", None))
    mm = R["memory"]
    T.append(("peak RSS at c=256", "≤ 50 MB", f"{mm['hwm_c256_kb'] / 1024:.1f} MB",
              mm["hwm_c256_kb"] / 1024 <= TARGETS["peak_rss"]))
    T.append(("idle RSS", "≤ 20 MB", f"{mm['idle_rss_kb'] / 1024:.1f} MB (after warm-up requests)",
              mm["idle_rss_kb"] / 1024 <= TARGETS["idle_rss"]))
    on = statistics.median([x["rps"] for x in R["ab"][AB_NAMES[0]]])
    offr = statistics.median([x["rps"] for x in R["ab"][AB_NAMES[1]]])
    diff = 100.0 * (on - offr) / offr
    cpu_on = statistics.median([x["gw_cpu_us_per_req"] for x in R["ab"][AB_NAMES[0]]])
    cpu_off = statistics.median([x["gw_cpu_us_per_req"] for x in R["ab"][AB_NAMES[1]]])
    T.append(("ledger on vs off, JSON c=64", "≤ 5% throughput difference",
              f"{diff:+.1f}% ({on:,.0f} on vs {offr:,.0f} off req/s); CPU/req {cpu_on:.0f} vs {cpu_off:.0f} µs "
              f"({100.0 * (cpu_on - cpu_off) / cpu_off:+.1f}%)", abs(diff) <= TARGETS["ledger_diff"]))
    su = statistics.median(R["startup"])
    T.append(("start to first request served", "≤ 100 ms", f"{su:.1f} ms (median)", su <= TARGETS["startup"]))
    T.append(("runs with auth (keys mode)", "required", "yes: main matrix, TTFB and memory figures", True))
    return T




def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--target-dir", default=os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")))
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--concurrency", default="1,16,64,256")
    ap.add_argument("--ttfb-n", type=int, default=1000)
    ap.add_argument("--ab-rounds", type=int, default=3)
    ap.add_argument("--startups", type=int, default=7)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--command", default="bench/run")
    ap.add_argument("--halt-poll-ns", type=int, metavar="NS",
                    help="also measure the c=1 figures with the guest's cpuidle haltpoll polling NS ns before"
                         " halting an idle vCPU (kernel default 200000; needs root; the old value is restored)")
    ap.add_argument("--quiet-machine", action="store_true", help="omit the noisy-figures warning")
    ap.add_argument("--from-json", help="re-render the report from a results.json of an earlier run")
    args = ap.parse_args()
    if args.from_json:
        with open(args.from_json) as f:
            R = json.load(f)
        a = R.get("args", {})
        args.duration, args.ttfb_n, args.ab_rounds = a.get("duration", 5), a.get("ttfb_n", 1000), a.get("ab_rounds", 3)
        R["targets"] = targets(R)
        with open(args.out, "w") as f:
            f.write(render(R, args))
        log(f"re-rendered {args.out} from {args.from_json}")
        return
    if args.quick:
        args.duration, args.concurrency, args.ttfb_n, args.ab_rounds, args.startups = 3, "1,64", 200, 1, 3
    conc = [int(c) for c in args.concurrency.split(",")]
    rel = os.path.join(args.target_dir, "release")
    gw_bin, mock_bin = os.path.join(rel, "ekai-gateway"), os.path.join(rel, "ekai-mock-provider")
    for b in (gw_bin, mock_bin):
        if not os.access(b, os.X_OK):
            sys.exit(f"missing {b}: build with cargo build --release -p ekai-gateway -p ekai-mock-provider")

    work = tempfile.mkdtemp(prefix="ekai-bench-")
    log(f"work dir {work}")
    R = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip()
        + (" (dirty)" if subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "crates"],
                                        capture_output=True, text=True).stdout.strip() else ""),
        "machine": machine(),
        "load_before": loadavg(),
        "command": args.command,
        "noisy": not args.quiet_machine,
        "runs": [], "ttfb": {}, "ab": {},
    }
    mock_port = free_port()
    mock = Mock(mock_bin, mock_port, work)
    mock.start()
    gws = []
    try:
        # ---- start-up time (before anything else is running on core 0)
        R["startup"] = []
        for i in range(args.startups):
            R["startup"].append(startup_once(gw_bin, mock_port, work))
        log(f"start-up ms: {[round(x, 1) for x in R['startup']]}")

        gw = Gateway(gw_bin, mock_port, work, "main", f"sqlite://{work}/usage.db", keys=True)
        gws.append(gw)
        time.sleep(0.3)
        R["memory"] = {"start_rss_kb": gw.status_kb("VmRSS")}
        # a few requests of every kind, then idle
        for case in ("openai_json", "openai_stream", "anthropic_stream", "cross_json"):
            _, _, (path, body, headers) = CASES[case]
            c = http.client.HTTPConnection("127.0.0.1", gw.port)
            for _ in range(5):
                c.request("POST", path, body=json.dumps(body),
                          headers=dict(gw.headers(headers), **{"Content-Type": "application/json"}))
                r = c.getresponse()
                data = r.read()
                if r.status != 200:
                    raise RuntimeError(f"{case}: gateway answered {r.status}: {data[:300]!r}")
            c.close()
        time.sleep(1.0)
        R["memory"]["idle_rss_kb"] = gw.status_kb("VmRSS")

        # ---- main matrix
        hwm_256 = 0
        for case in ("openai_json", "openai_stream", "anthropic_stream", "cross_json"):
            label, dspec, gspec = CASES[case]
            for c in conc:
                mock.start()
                tag = f"{case}-c{c}"
                d = measure(mock_port, dspec, c, args.duration, work, tag + "-direct")
                g = measure(gw.port, gspec, c, args.duration, work, tag + "-gw", gw=gw)
                if c == 256:
                    hwm_256 = max(hwm_256, g["gw_hwm_kb"])
                R["runs"].append({"case": case, "label": label, "c": c, "direct": d, "gateway": g})
                log(f"{tag}: direct {d['rps']:.0f} req/s p50 {d['lat_p50_us']}µs | gateway {g['rps']:.0f} req/s "
                    f"p50 {g['lat_p50_us']}µs p99 {g['lat_p99_us']}µs cpu/req {g['gw_cpu_us_per_req']:.0f}µs "
                    f"errors {d['errors']}/{g['errors']} core0 {g['cpu0_busy']:.0f}%")
        # realistic upstream latency, one concurrency
        mock.start()
        label, dspec, gspec = CASES["openai_stream_realistic"]
        rc = 64 if 64 in conc else conc[-1]
        d = measure(mock_port, dspec, rc, max(args.duration, 5), work, "realistic-direct")
        g = measure(gw.port, gspec, rc, max(args.duration, 5), work, "realistic-gw", gw=gw)
        R["runs"].append({"case": "openai_stream_realistic", "label": label, "c": rc, "direct": d, "gateway": g})
        log(f"realistic: direct {d['rps']:.0f} p50 {d['lat_p50_us']} | gw {g['rps']:.0f} p50 {g['lat_p50_us']}")
        R["memory"]["hwm_c256_kb"] = hwm_256 or gw.status_kb("VmHWM")
        R["memory"]["threads"] = gw.threads()
        time.sleep(1.0)
        R["memory"]["end_rss_kb"] = gw.status_kb("VmRSS")

        # ---- TTFB
        mock.start()
        for case in ("openai_stream", "anthropic_stream"):
            R["ttfb"][case] = ttfb(mock_port, gw, case, args.ttfb_n)
            log(f"ttfb {case}: {R['ttfb'][case]}")

        # ---- the floor: a bare TCP relay on the gateway's core (JSON c=1, stream TTFB)
        if shutil.which("socat"):
            mock.start()
            relay = Relay(mock_port, work)
            try:
                _, dspec, gspec = CASES["openai_json"]
                fd = measure(mock_port, dspec, 1, args.duration, work, "floor-direct")
                fr = measure(relay.port, dspec, 1, args.duration, work, "floor-relay")
                fg = measure(gw.port, gspec, 1, args.duration, work, "floor-gw", gw=gw)
                R["floor"] = {"direct": fd, "relay": fr, "gateway": fg,
                              "ttfb": ttfb(mock_port, relay, "openai_stream", min(args.ttfb_n, 500))}
                log(f"floor c=1 p50: direct {fd['lat_p50_us']} relay {fr['lat_p50_us']} gateway {fg['lat_p50_us']} µs")
            finally:
                relay.stop()
        else:
            log("socat not found: the relay floor is not measured")

        # ---- optional: the same c=1 figures with the guest's cpuidle halt-polling on
        if args.halt_poll_ns is not None:
            R["halt_poll"] = wakeup_diagnostic(args, mock, mock_port, gw, work)

        # ---- ledger on/off, logging on/off (JSON, c=64)
        # Open mode on all three (a gateway without a database cannot run in keys mode).
        on = Gateway(gw_bin, mock_port, work, "ledger-on", f"sqlite://{work}/usage-ab.db")
        off = Gateway(gw_bin, mock_port, work, "ledger-off", "none")
        quiet = Gateway(gw_bin, mock_port, work, "log-warn", f"sqlite://{work}/usage-quiet.db", rust_log="warn")
        gws += [on, off, quiet]
        variants = list(zip(AB_NAMES, (on, off, quiet)))
        _, _, gspec = CASES["openai_json"]
        for name, _ in variants:
            R["ab"][name] = []
        for i in range(args.ab_rounds):
            mock.start()
            for name, g_ in variants:
                res = measure(g_.port, gspec, 64, args.duration, work, f"ab-{i}-{g_.name}", gw=g_)
                R["ab"][name].append(res)
                log(f"ab round {i} {g_.name}: {res['rps']:.0f} req/s cpu/req {res['gw_cpu_us_per_req']:.0f}µs")
    finally:
        for g_ in gws:
            g_.stop()
        mock.stop()
    R["load_after"] = loadavg()

    R["targets"] = targets(R)

    raw = os.path.join(work, "results.json")
    R["raw"] = raw
    R["args"] = {"duration": args.duration, "ttfb_n": args.ttfb_n, "ab_rounds": args.ab_rounds}
    with open(raw, "w") as f:
        json.dump(R, f, indent=1, default=str)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(render(R, args))
    log(f"wrote {args.out} (raw: {raw})")
    for row in R["targets"]:
        log(f"  {row[0]}: {row[2]} (target {row[1]}) -> {'n/a' if row[3] is None else ('met' if row[3] else 'NOT met')}")


if __name__ == "__main__":
    main()
