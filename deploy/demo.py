#!/usr/bin/env python3
"""./pocketmail demo — the whole pipeline on this machine, with local peers.

Starts moto S3 (HTTPS, SigV4 enforced) as a stand-in for R2 and an SMTP server
with AUTH as a stand-in for Maddy, puts sample mail into pending/ exactly as
the Cloudflare Worker does, starts the four services (or, with --combined, the
one pocketmaild process that hosts all four), and shows where each message
landed. Run it with the Python that has moto and boto3 (the pocketmail
script finds it). Everything lives under one temp dir, printed at the end.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".bazel", "bin", "services")
DOMAIN = "example.org"
MAILBOXES = ["inbox@example.org", "admin@example.org", "alice@example.org", "bob@example.org"]

SAMPLES = [
    # (envelope recipient, envelope sender, raw message, note)
    ("alice@example.org", "friend@outside.test",
     "From: A Friend <friend@outside.test>\r\nTo: alice@example.org\r\nSubject: Lunch?\r\n"
     "Date: Tue, 24 Nov 2026 09:00:00 +0000\r\nMessage-ID: <lunch@outside.test>\r\n\r\n"
     "Noon at the usual place?\r\n", "exact mailbox"),
    ("bob+shopping@example.org", "orders@shop.test",
     "From: Shop <orders@shop.test>\r\nTo: bob+shopping@example.org\r\nSubject: Your order\r\n"
     "Date: Tue, 24 Nov 2026 09:01:00 +0000\r\nMessage-ID: <order-1@shop.test>\r\n\r\n"
     "Order 1 has shipped.\r\n", "+tag → bob"),
    ("postmaster@example.org", "reporter@isp.test",
     "From: reporter@isp.test\r\nTo: postmaster@example.org\r\nSubject: DMARC report\r\n"
     "Date: Tue, 24 Nov 2026 09:02:00 +0000\r\nMessage-ID: <dmarc@isp.test>\r\n\r\n"
     "Aggregate report attached.\r\n", "role alias → admin"),
    ("someone-new@example.org", "newsletter@list.test",
     "From: List <newsletter@list.test>\r\nTo: someone-new@example.org\r\n"
     "Subject: =?UTF-8?B?w5xiZXJyYXNjaHVuZyDwn46J?=\r\n"
     "Date: Tue, 24 Nov 2026 09:03:00 +0000\r\nMessage-ID: <nl@list.test>\r\n"
     "Content-Type: text/plain; charset=utf-8\r\n\r\nGrüße!\r\n", "unknown → catch-all inbox"),
    ("alice@example.org", "spammer@bad.test",
     "To: alice@example.org\r\nSubject: no From header\r\nMessage-ID: <nofrom@bad.test>\r\n\r\n"
     "Maddy refuses this with 554 5.6.0.\r\n", "no From → dead letter"),
]


def log(msg):
    print(f"\033[1m[demo]\033[0m {msg}", flush=True)


def wait_ready(proc, what):
    while True:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"{what} exited before it was ready")
        if line.startswith("READY"):
            return dict(kv.split("=", 1) for kv in line.split()[1:])


def read_env(path):
    out = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def main():
    import boto3
    from botocore.config import Config

    base = tempfile.mkdtemp(prefix="pocketmail-demo-", dir="/tmp")
    procs = []

    def stop_all():
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()

    try:
        log(f"scratch dir {base}")
        os.makedirs(f"{base}/s3")
        s3 = subprocess.Popen([sys.executable, f"{ROOT}/tests/peers/s3/s3_peer.py", "--dir", f"{base}/s3"],
                              stdout=subprocess.PIPE, text=True)
        procs.append(s3)
        wait_ready(s3, "S3 peer")
        creds = read_env(f"{base}/s3/creds.env")
        log(f"S3 peer (moto, SigV4 over HTTPS) at {creds['R2_ENDPOINT']}, bucket {creds['R2_BUCKET']}")

        with open(f"{base}/smtp-creds", "w") as f:
            f.write("USER=pocketmail-inject\nPASS=demo-inject-password\n")
        os.chmod(f"{base}/smtp-creds", 0o600)
        with open(f"{base}/mailboxes.txt", "w") as f:
            f.write("\n".join(MAILBOXES) + "\n")
        smtp = subprocess.Popen(["/usr/bin/python3", f"{ROOT}/tests/peers/smtp/smtp_peer.py",
                                 "--credentials", f"{base}/smtp-creds", "--mailboxes", f"{base}/mailboxes.txt",
                                 "--maildir", f"{base}/maildir"], stdout=subprocess.PIPE, text=True)
        procs.append(smtp)
        smtp_port = wait_ready(smtp, "SMTP peer")["port"]
        log(f"SMTP peer (AUTH required, Maildir) on 127.0.0.1:{smtp_port}, mailboxes {', '.join(MAILBOXES)}")

        client = boto3.client("s3", endpoint_url=creds["R2_ENDPOINT"], region_name="auto",
                              aws_access_key_id=creds["R2_ACCESS_KEY_ID"],
                              aws_secret_access_key=creds["R2_SECRET_ACCESS_KEY"],
                              verify=creds["R2_CA_FILE"], config=Config(s3={"addressing_style": "path"}))
        keys = {}
        for to, sender, raw, note in SAMPLES:
            data = raw.encode()
            sha = hashlib.sha256(data).hexdigest()
            key = f"pending/{sha}-{hashlib.sha256(to.lower().encode()).hexdigest()[:16]}.eml"
            client.put_object(Bucket=creds["R2_BUCKET"], Key=key, Body=data, ContentType="message/rfc822",
                              Metadata={"to": to, "from": sender, "sha256": sha, "rawsize": str(len(data)),
                                        "receivedms": str(int(time.time() * 1000))})
            keys[key] = (to, note)
        log(f"put {len(keys)} sample messages into pending/ (the Worker's bucket contract)")

        env = dict(os.environ)
        env.update(creds)
        env.update({
            "POCKETMAIL_RUNTIME_DIR": f"{base}/run", "POCKETMAIL_STATE_DIR": f"{base}/state",
            "MAIL_DOMAIN": DOMAIN, "MAIL_HOSTNAME": "phone.demo", "MAIL_POLL": "2",
            "MAIL_ACCOUNTS_CMD": f"cat {base}/mailboxes.txt",
            "MAIL_INJECT_HOST": "127.0.0.1", "MAIL_INJECT_PORT": smtp_port,
            "INJECT_USER": "pocketmail-inject", "INJECT_PASS": "demo-inject-password",
        })
        combined = "--combined" in sys.argv[1:]
        for name in ("pocketmaild",) if combined else ("ledger", "router", "injector", "fetcher"):
            p = subprocess.Popen([f"{BIN}/{name}/{name}"], env=env, stderr=open(f"{base}/{name}.log", "w"))
            procs.append(p)
            # pocketmaild opens all four sockets at once; the fetcher's is one of them.
            sock = f"{base}/run/{'fetcher' if combined else name}.sock"
            for _ in range(200):
                if os.path.exists(sock) or p.poll() is not None:
                    break
                time.sleep(0.05)
            if p.poll() is not None:
                raise SystemExit(f"{name} failed to start; see {base}/{name}.log")
            log(f"{name} serving on {sock}")

        deadline = time.time() + 60
        while time.time() < deadline:
            left = client.list_objects_v2(Bucket=creds["R2_BUCKET"], Prefix="pending/").get("KeyCount", 0)
            if left == 0:
                break
            time.sleep(0.5)
        log("pending/ is empty" if left == 0 else f"{left} objects still pending after 60 s")

        landed = {}
        for root, _, files in os.walk(f"{base}/maildir"):
            if os.path.basename(root) != "new":
                continue
            for fn in files:
                text = open(os.path.join(root, fn), "rb").read().decode("utf-8", "replace")
                headers = dict(l.split(": ", 1) for l in text.split("\r\n\r\n")[0].split("\r\n") if ": " in l)
                landed[headers.get("X-Pocketmail-Key")] = headers.get("Delivered-To")
        failed = {o["Key"]: o for o in client.list_objects_v2(Bucket=creds["R2_BUCKET"], Prefix="failed/").get("Contents", [])}
        # What the ledger recorded for each message (the rule the router chose,
        # the final state), asked over gRPC the way grpcurl would.
        ledger = {}
        inspect = f"{ROOT}/tests/reflection/grpc_inspect.py"
        listing = subprocess.run(["/usr/bin/python3", inspect, f"unix:{base}/run/ledger.sock", "call",
                                  "pocketmail.ledger.v1.Ledger/List", "{}"], capture_output=True, text=True)
        if listing.returncode == 0:
            for m in json.loads(listing.stdout).get("messages", []):
                ledger[m["key"]] = m
        print()
        print(f"{'recipient':<26} {'router rule':<18} {'ledger state':<14} landed in")
        print("-" * 96)
        for key, (to, note) in keys.items():
            fk = "failed/" + key[len("pending/"):]
            row = ledger.get(key, {})
            if key in landed:
                where = landed[key]
            elif fk in failed:
                reason = client.head_object(Bucket=creds["R2_BUCKET"], Key=fk)["Metadata"].get("reason", "")
                where = f"failed/: {reason[:44]}"
            else:
                where = "NOT DELIVERED"
            rule = row.get("routeRule", "-").replace("RULE_", "").lower()
            state = row.get("state", "?").replace("STATE_", "").lower()
            print(f"{to:<26} {rule:<18} {state:<14} {where}")
        print()
        processed = client.list_objects_v2(Bucket=creds["R2_BUCKET"], Prefix="processed/").get("KeyCount", 0)
        log(f"processed/ holds {processed} audit copies; failed/ holds {len(failed)} dead letter(s)")
        ctl = os.path.join(BIN, "pocketmailctl", "pocketmailctl")
        if os.path.exists(ctl):
            log("pocketmailctl status:")
            subprocess.run([ctl, "--runtime-dir", f"{base}/run", "status"], check=False)
        log(f"maildirs under {base}/maildir, service logs in {base}/*.log")
        return 0 if all(k in landed or ("failed/" + k[8:]) in failed for k in keys) else 1
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
