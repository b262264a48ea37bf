"""profile-s3-pull.py — where a blob pull from S3 spends its time (docs/s3.md, "Performance: the read path").

    scripts/profile-s3-pull.py --bin .build/release/berth [--mib 512] [--pulls 5] [--plain] [--perf FILE]

Starts SeaweedFS (`weed mini`) and `berth serve` (SQLite + S3; blobs sealed unless --plain), pushes one
blob, pulls it --pulls times with curl, and prints per pull the rate and the CPU seconds per GiB that
berth and SeaweedFS spent (from /proc/PID/stat); with --perf, `perf record -g` on berth during the last
pull. Everything it creates under --base is removed at the end, but the perf file.
"""
import argparse, json, os, shutil, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "IntegrationTests"))
import berth_helpers as bh
from s3_helpers import SeaweedFS, ACCESS_KEY, SECRET_KEY, BUCKET

ap = argparse.ArgumentParser()
ap.add_argument("--bin", required=True)
ap.add_argument("--mib", type=int, default=512)
ap.add_argument("--pulls", type=int, default=5)
ap.add_argument("--perf", default="")
ap.add_argument("--base", default="/tmp/berth-profile-s3-pull")
ap.add_argument("--plain", action="store_true")
a = ap.parse_args()
base = Path(a.base)
shutil.rmtree(base, ignore_errors=True)
base.mkdir(parents=True)
hz = os.sysconf("SC_CLK_TCK")
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / hz
weed = SeaweedFS(base / "weed")
srv = None
try:
    cfg = {"blobBackend": "s3", "s3Endpoint": weed.endpoint, "s3Bucket": BUCKET, "s3Region": "us-east-1",
           "s3PathStyle": True, "s3AccessKeyId": ACCESS_KEY, "s3SecretAccessKey": SECRET_KEY}
    if a.plain: cfg["encryptBlobs"] = False
    (base / "berth.json").write_text(json.dumps(cfg))
    srv = bh.BerthServer(Path(a.bin), base / "data", base / "logs", extra_args=["--config", str(base / "berth.json")])
    srv.start()
    c = bh.Client(srv, timeout=600)
    data = os.urandom(a.mib << 20)
    digest = c.push_blob("prof/r", data)
    del data
    auth = srv.basic_auth_header()
    url = f"{srv.url}/v2/prof/r/blobs/{digest}"
    wpid = weed.proc.pid
    for i in range(a.pulls):
        perf = None
        if a.perf and i == a.pulls - 1:
            perf = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-p", str(srv.proc.pid), "-o", a.perf],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
        c0, w0, t0 = cpu(srv.proc.pid), cpu(wpid), time.monotonic()
        r = subprocess.run(["curl", "-sf", "-o", "/dev/null", "-w", "%{size_download}", "-H", f"Authorization: {auth}", url],
                           capture_output=True, text=True)
        t1, c1, w1 = time.monotonic(), cpu(srv.proc.pid), cpu(wpid)
        if perf: perf.send_signal(2); perf.wait()
        n = int(r.stdout or 0)
        assert n == a.mib << 20, (r.returncode, r.stdout, r.stderr)
        gib = n / (1 << 30)
        print(f"pull {i}: {n / (1<<20) / (t1 - t0):7.1f} MiB/s  berth {(c1 - c0) / gib:5.2f} cpu-s/GiB  weed {(w1 - w0) / gib:5.2f} cpu-s/GiB", flush=True)
    print("maxrss", open(f"/proc/{srv.proc.pid}/status").read().split("VmHWM:")[1].split("\n")[0].strip())
finally:
    if srv: srv.dispose()
    weed.stop()
    shutil.rmtree(base, ignore_errors=True)
