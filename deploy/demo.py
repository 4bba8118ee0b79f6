#!/usr/bin/env python3
"""./pocketmail demo — the whole pipeline on this machine, with local peers.

Starts moto S3 (HTTPS, SigV4 enforced) as a stand-in for R2 and a real Maddy
(PM_MADDY_BIN, set up by deploy/install-email.sh exactly as on a phone:
rendered maddy.conf, generated credentials, accounts, the runit run script),
puts sample mail into pending/ exactly as the Cloudflare Worker does, starts
pocketmaild, the one process that hosts the four services, as the installer
does by default (or, with --four, the four services as processes of their own),
configured from the installer's pocketmail.env, and shows where each
message landed, read back from its Maddy mailbox over IMAP. Run it with the
venv python that has moto and boto3 (./pocketmail demo does). Everything
lives under one temp dir, printed at the end.
"""
import hashlib
import imaplib
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
# Mailboxes the demo adds besides the installer's own inbox@ and admin@.
PEOPLE = {"alice@example.org": "demo-alice-pw", "bob@example.org": "demo-bob-pw"}
# Maddy's size limit here (MAIL_MAX_MESSAGE_SIZE), so one sample can exceed it.
MAX_MESSAGE_SIZE = "1M"

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
    ("bob@example.org", "billing@vendor.test",
     "From: Vendor, Inc. <billing@vendor.test>\r\nTo: bob@example.org\r\nSubject: Invoice\r\n"
     "Date: Tuesday the 24th\r\n\r\n"
     "Sloppy From and Date: Maddy's submission endpoint refuses these, LMTP delivers them.\r\n",
     "sloppy headers → bob"),
    ("alice@example.org", "spammer@bad.test",
     "To: alice@example.org\r\nSubject: no From header\r\nMessage-ID: <nofrom@bad.test>\r\n\r\n"
     "Delivered as it is.\r\n", "no From → alice"),
    ("alice@example.org", "big@outside.test",
     "From: big@outside.test\r\nTo: alice@example.org\r\nSubject: too big\r\n\r\n"
     + ("x" * 76 + "\r\n") * 20000, "over Maddy's 1M → dead letter"),
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


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def installer(maddy_dir, *args, stdin=None):
    """Runs deploy/install-email.sh on the demo's prefix (MADDY_BIN = the test build)."""
    env = dict(os.environ, MADDY_BIN=os.environ["PM_MADDY_BIN"])
    subprocess.run(["bash", f"{ROOT}/deploy/install-email.sh", "--prefix", f"{maddy_dir}/p",
                    "--env", f"{maddy_dir}/.env", *args], input=stdin, text=True, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=open(f"{maddy_dir}/install.log", "a"))


def start_maddy(base, procs):
    """Maddy the way a phone gets it: the installer renders its config, makes
    the credentials and accounts, and writes the run script that starts it."""
    if not os.environ.get("PM_MADDY_BIN"):
        raise SystemExit("PM_MADDY_BIN is not set (./pocketmail demo builds Maddy and sets it)")
    d = f"{base}/maddy"
    os.makedirs(f"{d}/secrets", mode=0o700)
    imap_port = free_port()
    with open(f"{d}/.env", "w") as f:
        f.write(f"ENABLE_EMAIL=true\nMAIL_DOMAIN={DOMAIN}\nMAIL_IMAP_PORT={imap_port}\n"
                f"MAIL_INJECT_PORT={free_port()}\nMAIL_SUBMISSION_PORT={free_port()}\n"
                f"MAIL_MAX_MESSAGE_SIZE={MAX_MESSAGE_SIZE}\n")
    for name, text in (("mail-r2.env", "R2_ACCOUNT_ID=demo\nR2_ACCESS_KEY_ID=demo\nR2_SECRET_ACCESS_KEY=demo\nR2_BUCKET=demo\n"),
                       ("mail-relay.env", "RESEND_API_KEY=re_demo_never_used\n")):
        with open(f"{d}/secrets/{name}", "w") as f:
            f.write(text)
        os.chmod(f"{d}/secrets/{name}", 0o600)
    installer(d, "--secrets-src", f"{d}/secrets", "--init", "none", "--no-health", "install", "maddy")
    for address, password in PEOPLE.items():
        installer(d, "add-mailbox", address, stdin=password + "\n")
    settings = {}
    for f in ("etc/pocketmail/pocketmail.env", "etc/pocketmail/secrets/mail-inject.env",
              "etc/pocketmail/secrets/mail-admin.env"):
        settings.update(read_env(f"{d}/p/{f}"))
    proc = subprocess.Popen([f"{d}/p/etc/sv/pocketmail-maddy/run"], stdout=open(f"{d}/maddy.log", "w"),
                            stderr=subprocess.STDOUT)
    procs.append(proc)
    for _ in range(200):
        if os.path.exists(settings["MAIL_LMTP_SOCKET"]):
            try:
                imaplib.IMAP4("127.0.0.1", imap_port).logout()
                break
            except OSError:
                pass
        if proc.poll() is not None:
            raise SystemExit(f"Maddy exited; see {d}/maddy.log")
        time.sleep(0.05)
    version = subprocess.run([os.environ["PM_MADDY_BIN"], "version"], capture_output=True, text=True).stdout.split()[0]
    passwords = dict(PEOPLE)
    passwords[settings["INBOX_USER"]] = settings["INBOX_PASS"]
    passwords[settings["ADMIN_USER"]] = settings["ADMIN_PASS"]
    return {"prefix": f"{d}/p", "settings": settings, "imap_port": imap_port, "version": version,
            "passwords": passwords}


def read_back(maddy):
    """trace key → (mailbox, the message after the fields Maddy adds), over IMAP."""
    landed = {}
    for mailbox, password in maddy["passwords"].items():
        imap = imaplib.IMAP4("127.0.0.1", maddy["imap_port"])
        imap.login(mailbox, password)
        _, count = imap.select("INBOX", readonly=True)
        if int(count[0]) == 0:
            imap.logout()
            continue
        _, data = imap.fetch("1:*", "(BODY.PEEK[])")
        for part in data:
            if not isinstance(part, tuple):
                continue
            stored = part[1]
            # Maddy puts Delivered-To and Return-Path in front of what it got.
            rest = stored
            for name in (b"Delivered-To: ", b"Return-Path: "):
                if rest.startswith(name):
                    rest = rest[rest.index(b"\r\n") + 2:]
            if rest.startswith(b"X-Pocketmail-Key: "):
                key = rest[18:rest.index(b"\r\n")].decode()
                landed[key] = (mailbox, rest)
        imap.logout()
    return landed


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

        maddy = start_maddy(base, procs)
        log(f"Maddy {maddy['version']} (installed by deploy/install-email.sh into {maddy['prefix']}): "
            f"LMTP on {maddy['settings']['MAIL_LMTP_SOCKET']}, IMAP on 127.0.0.1:{maddy['imap_port']}")

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

        # The services as the installer configured them (LMTP socket, Maddy's
        # account list and its watch, probe credentials), on the demo's R2.
        env = dict(os.environ)
        env.update(maddy["settings"])
        env.update(creds)
        env.update({
            "POCKETMAIL_RUNTIME_DIR": f"{base}/run", "POCKETMAIL_STATE_DIR": f"{base}/state",
            "MAIL_HOSTNAME": "phone.demo", "MAIL_POLL": "2", "RETRY_BASE_S": "1",
        })
        env.pop("POCKETMAIL_TOKEN_FILE", None)
        combined = "--four" not in sys.argv[1:]  # the installer's default layout
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

        # Read every mailbox back over IMAP, as a mail client would.
        landed = read_back(maddy)
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
        print(f"{'recipient':<26} {'router rule':<18} {'ledger state':<14} landed in (read back over IMAP)")
        print("-" * 100)
        for key, (to, note) in keys.items():
            fk = "failed/" + key[len("pending/"):]
            row = ledger.get(key, {})
            raw = next(r for t, _, r, n in SAMPLES if (t, n) == (to, note)).encode()
            if key in landed:
                mailbox, body = landed[key]
                same = body == f"X-Pocketmail-Key: {key}\r\n".encode() + raw
                where = f"{mailbox}, {'byte for byte' if same else 'ALTERED'}"
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
        log(f"Maddy's state under {maddy['prefix']}, service logs in {base}/*.log")
        return 0 if all(k in landed or ("failed/" + k[8:]) in failed for k in keys) else 1
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
