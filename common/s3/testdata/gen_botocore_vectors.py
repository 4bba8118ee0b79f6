#!/usr/bin/env python3
"""Writes botocore_s3_vectors.json: S3 requests signed by botocore's S3SigV4Auth.

The C++ signer (common/s3/sigv4_test.cc) must reproduce every canonical request,
string to sign and Authorization header in that file, and the S3 client's path
encoding must reproduce botocore's wire path for every key.

Run with a python that has botocore (the default pyenv `python3` here):
    python3 common/s3/testdata/gen_botocore_vectors.py
The output is deterministic (fixed clock and credentials); commit it.
"""

import base64
import datetime
import json
import os

import botocore
import botocore.auth
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.utils import percent_encode

ACCESS_KEY_ID = "AKIAPOCKETMAILEXAMPL"
SECRET = "pocketmail/TEST+secret/0123456789abcdefGHIJ"
REGION = "auto"
SIGNING_TIME = datetime.datetime(2025, 3, 4, 5, 6, 7)
R2 = "https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com"
PEER = "https://127.0.0.1:8443"
BUCKET = "mail"
OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "botocore_s3_vectors.json")


class RecordingS3SigV4Auth(S3SigV4Auth):
    """botocore's S3 signer, keeping the intermediate strings it computed."""

    def canonical_request(self, request):
        self.recorded_canonical_request = super().canonical_request(request)
        return self.recorded_canonical_request

    def string_to_sign(self, request, canonical_request):
        self.recorded_string_to_sign = super().string_to_sign(request, canonical_request)
        return self.recorded_string_to_sign


def object_path(key):
    # What botocore's REST serializer does with the greedy {Key+} label.
    return percent_encode(f"/{BUCKET}/{key}", safe="/~")


def copy_source(key):
    # botocore's CopySource handling: the key percent-encoded, '/' kept.
    return "/" + percent_encode(f"{BUCKET}/{key}", safe="/~-_.")


def sign(name, method, key=None, query=(), headers=(), body=b"", endpoint=R2,
         unsigned_payload=False):
    path = f"/{BUCKET}/{key}" if key is not None else f"/{BUCKET}"
    wire_path = object_path(key) if key is not None else f"/{BUCKET}"
    request = AWSRequest(method=method, url=endpoint + wire_path, headers=dict(headers),
                         data=body, params=list(query))
    if unsigned_payload:
        request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    auth = RecordingS3SigV4Auth(Credentials(ACCESS_KEY_ID, SECRET), "s3", REGION)
    auth.add_auth(request)
    return {
        "name": name,
        "method": method,
        "path": path,
        "wire_path": wire_path,
        "query": [[k, v] for k, v in query],
        # botocore signs the Host it derives from the URL; it is listed here so the
        # C++ side signs the same header set.
        "headers": [["Host", botocore.auth._host_from_url(request.url)]] + [list(h) for h in headers],
        "body_base64": base64.b64encode(body).decode("ascii"),
        "payload_hash": request.headers["X-Amz-Content-SHA256"],
        "modes": ["s3"],
        "canonical_request": auth.recorded_canonical_request,
        "string_to_sign": auth.recorded_string_to_sign,
        "authorization": request.headers["Authorization"],
    }


def main():
    botocore.auth.get_current_datetime = lambda *args, **kwargs: SIGNING_TIME
    vectors = [
        sign("get-plain-key", "GET", "pending/0a1b2c3d.eml"),
        sign("get-key-with-spaces", "GET", "pending/a b  c.eml"),
        sign("get-unicode-key", "GET", "pending/Grüße ✉ 日本.eml"),
        sign("get-key-with-plus-equals-at-percent", "GET", "pending/a+b=c@d%e%2Fz.eml"),
        sign("get-key-with-reserved-punctuation", "GET", "pending/x!$&'()*,;:[]#?{}|^`\"<>.eml"),
        sign("get-key-not-normalized", "GET", "pending/../a//./b/.eml"),
        sign("get-key-with-tilde-and-unreserved", "GET", "pending/~user-name_1.2.eml"),
        sign("head-object", "HEAD", "pending/a b.eml"),
        sign("delete-object", "DELETE", "processed/a+b.eml"),
        sign("put-with-metadata-if-none-match", "PUT", "pending/new message.eml",
             headers=[("Content-Type", "message/rfc822"),
                      ("If-None-Match", "*"),
                      ("x-amz-meta-to", "user+tag@example.com"),
                      ("x-amz-meta-from", "Sender <s@example.org>"),
                      ("x-amz-meta-subject", "=?UTF-8?B?R3LDvMOfZSDinIk=?="),
                      ("x-amz-meta-rawsize", "1234")],
             body=b"From: s@example.org\r\nSubject: hi\r\n\r\nbody\r\n"),
        sign("put-binary-body", "PUT", "pending/binary.bin",
             headers=[("Content-Type", "application/octet-stream")],
             body=bytes(range(256)) * 3),
        sign("put-unsigned-payload", "PUT", "pending/unsigned.eml",
             headers=[("Content-Type", "application/octet-stream")], body=b"payload",
             unsigned_payload=True),
        sign("list-pending", "GET", query=[("list-type", "2"), ("prefix", "pending/"),
                                           ("max-keys", "50"), ("encoding-type", "url")]),
        sign("list-continuation", "GET",
             query=[("list-type", "2"), ("prefix", "pending/"), ("max-keys", "1000"),
                    ("continuation-token", "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=+x"),
                    ("start-after", "pending/a b+c@d=e"), ("encoding-type", "url")]),
        sign("copy-with-metadata-copy", "PUT", "processed/a b+c@d=é.eml",
             headers=[("x-amz-copy-source", copy_source("pending/a b+c@d=é.eml")),
                      ("x-amz-metadata-directive", "COPY")]),
        sign("copy-with-metadata-replace", "PUT", "failed/x y.eml",
             headers=[("x-amz-copy-source", copy_source("pending/x y.eml")),
                      ("x-amz-metadata-directive", "REPLACE"),
                      ("x-amz-meta-reason", "554 5.6.0   message   rejected"),
                      ("x-amz-meta-to", "admin@example.com")]),
        sign("get-on-port-endpoint", "GET", "pending/a b.eml", endpoint=PEER),
        sign("list-on-port-endpoint", "GET", query=[("list-type", "2"), ("prefix", "pending/")],
             endpoint=PEER),
    ]
    document = {
        "source": f"botocore {botocore.__version__} S3SigV4Auth, by gen_botocore_vectors.py",
        "access_key_id": ACCESS_KEY_ID,
        "secret_access_key": SECRET,
        "region": REGION,
        "service": "s3",
        "amz_date": SIGNING_TIME.strftime("%Y%m%dT%H%M%SZ"),
        "add_content_sha256_header": True,
        "path_is": "the decoded /bucket/key; wire_path is botocore's encoding of it",
        "vectors": vectors,
    }
    with open(OUTPUT, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
