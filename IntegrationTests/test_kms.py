"""KMS keys on a real `berth serve` (issue #13, section 1), with the real aws CLI and boto3: the
`TrentService` JSON API on the same port as ECR, signed for service `kms`.

* The lifecycle of a key: create, describe, list, aliases, disable/enable, rotation (automatic
  setting and on demand; old ciphertexts still decrypt), scheduled deletion and its cancellation.
* Encrypt/Decrypt/GenerateDataKey/ReEncrypt round trips, with and without the matching encryption
  context; truncated, forged and foreign ciphertext blobs are refused with InvalidCiphertextException.
* Key policies: the default policy (delegating to IAM policies of the account), and a policy that
  grants one IAM user and not another; AccessDeniedException otherwise.
* Every error `__type` is one of botocore's `kms` model (or ValidationException/AccessDeniedException,
  which KMS sends without modelling them).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time

import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from berth_helpers import unique
from ecr_helpers import ACCOUNT_ID, AWS_CLI, _boto_session
from ecr_helpers import ecr, ecr_server, aws_cli  # noqa: F401 (fixtures)

_MODEL = botocore.session.get_session().get_service_model("kms")
ALLOWED_TYPES = {s.name for s in _MODEL.error_shapes} | {"ValidationException", "AccessDeniedException"}


class KMS:
    """One set of credentials on the server: boto3 `kms`/`iam` clients and the aws CLI."""

    def __init__(self, server, access_key, secret_key, tmp):
        self.server, self.access_key, self.secret_key, self.tmp = server, access_key, secret_key, tmp

    def boto(self, service: str = "kms"):
        cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=60)
        return _boto_session().client(service, endpoint_url=self.server.url, region_name="us-east-1",
                                      aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key, config=cfg)

    def cli(self, *args, check: bool = True) -> subprocess.CompletedProcess:
        none = str(self.tmp / "no-such-aws-config")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none,
                    "AWS_EC2_METADATA_DISABLED": "true", "AWS_MAX_ATTEMPTS": "1", "AWS_PAGER": ""})
        cmd = [AWS_CLI, "kms", *args, "--endpoint-url", self.server.url, "--region", "us-east-1", "--output", "json"]
        p = subprocess.run(cmd, capture_output=True, env=env, timeout=120, stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}\n{p.stderr.decode(errors='replace')[-2000:]}")
        return p

    def cli_json(self, *args) -> dict:
        out = self.cli(*args).stdout.decode().strip()
        return json.loads(out) if out else {}


def expect_kms_error(fn, code: str, **params) -> ClientError:
    with pytest.raises(ClientError) as info:
        fn(**params)
    err = info.value.response["Error"]
    assert err["Code"] == code, f"{fn.__name__}: expected {code}, got {err}"
    assert err["Code"] in ALLOWED_TYPES, f"{err['Code']} is not a KMS error type"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] < 500
    return info.value


@pytest.fixture
def root(ecr, tmp_path) -> KMS:
    return KMS(ecr.server, ecr.access_key, ecr.secret_key, tmp_path)


def new_user(root: KMS, policy: dict | None = None) -> tuple[str, KMS]:
    iam = root.boto("iam")
    name = unique("kmsuser")
    iam.create_user(UserName=name)
    if policy:
        iam.put_user_policy(UserName=name, PolicyName="kms", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    time.sleep(1.2)  # identity caches: at most a second
    return name, KMS(root.server, key["AccessKeyId"], key["SecretAccessKey"], root.tmp)


def test_key_lifecycle_with_the_cli(root):
    meta = root.cli_json("create-key", "--description", "lifecycle", "--tags", "TagKey=team,TagValue=blue")["KeyMetadata"]
    key_id, arn = meta["KeyId"], meta["Arn"]
    assert arn == f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/{key_id}"
    assert meta["KeyState"] == "Enabled" and meta["KeySpec"] == "SYMMETRIC_DEFAULT" and meta["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert meta["KeyManager"] == "CUSTOMER" and meta["Enabled"] is True and meta["Description"] == "lifecycle"
    assert root.cli_json("describe-key", "--key-id", arn)["KeyMetadata"]["KeyId"] == key_id
    assert key_id in [k["KeyId"] for k in root.cli_json("list-keys")["Keys"]]

    alias = f"alias/{unique('app')}"
    root.cli("create-alias", "--alias-name", alias, "--target-key-id", key_id)
    assert root.cli_json("describe-key", "--key-id", alias)["KeyMetadata"]["KeyId"] == key_id
    aliases = root.cli_json("list-aliases", "--key-id", key_id)["Aliases"]
    assert [a["AliasName"] for a in aliases] == [alias]
    assert aliases[0]["AliasArn"] == f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:{alias}"

    policy = json.loads(root.cli_json("get-key-policy", "--key-id", key_id, "--policy-name", "default")["Policy"])
    assert policy["Statement"] == [{"Sid": "Enable IAM User Permissions", "Effect": "Allow",
                                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}, "Action": "kms:*", "Resource": "*"}]
    assert root.cli_json("list-resource-tags", "--key-id", key_id)["Tags"] == [{"TagKey": "team", "TagValue": "blue"}]

    root.cli("enable-key-rotation", "--key-id", key_id, "--rotation-period-in-days", "180")
    status = root.cli_json("get-key-rotation-status", "--key-id", key_id)
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 180

    plaintext = b"rotate me"
    (root.tmp / "p.bin").write_bytes(plaintext)
    blob = root.cli_json("encrypt", "--key-id", alias, "--plaintext", f"fileb://{root.tmp / 'p.bin'}")["CiphertextBlob"]
    assert root.cli_json("rotate-key-on-demand", "--key-id", key_id)["KeyId"] == arn
    assert len(root.boto().list_key_rotations(KeyId=key_id)["Rotations"]) == 1
    (root.tmp / "c.bin").write_bytes(base64.b64decode(blob))
    out = root.cli_json("decrypt", "--ciphertext-blob", f"fileb://{root.tmp / 'c.bin'}")
    assert base64.b64decode(out["Plaintext"]) == plaintext, "material from before the rotation still decrypts"

    dk = root.cli_json("generate-data-key", "--key-id", key_id, "--key-spec", "AES_256")
    assert len(base64.b64decode(dk["Plaintext"])) == 32

    root.cli("disable-key", "--key-id", key_id)
    p = root.cli("encrypt", "--key-id", key_id, "--plaintext", f"fileb://{root.tmp / 'p.bin'}", check=False)
    assert p.returncode != 0 and b"DisabledException" in p.stderr
    root.cli("enable-key", "--key-id", key_id)

    sched = root.cli_json("schedule-key-deletion", "--key-id", key_id, "--pending-window-in-days", "7")
    assert sched["KeyState"] == "PendingDeletion" and sched["PendingWindowInDays"] == 7
    deletion = sched["DeletionDate"]
    assert 7 * 86400 - 120 < deletion - time.time() < 7 * 86400 + 120
    p = root.cli("decrypt", "--ciphertext-blob", f"fileb://{root.tmp / 'c.bin'}", check=False)
    assert p.returncode != 0 and b"KMSInvalidStateException" in p.stderr
    assert root.cli_json("cancel-key-deletion", "--key-id", key_id)["KeyId"] == arn
    assert root.cli_json("describe-key", "--key-id", key_id)["KeyMetadata"]["KeyState"] == "Disabled"

    root.cli("delete-alias", "--alias-name", alias)
    p = root.cli("describe-key", "--key-id", alias, check=False)
    assert p.returncode != 0 and b"NotFoundException" in p.stderr


def test_encrypt_decrypt_with_context_and_forged_blobs(root):
    kms = root.boto()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    ctx = {"repository": "app", "purpose": "test"}
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"hello kms", EncryptionContext=ctx)["CiphertextBlob"]
    assert b"hello kms" not in blob
    out = kms.decrypt(CiphertextBlob=blob, EncryptionContext=dict(reversed(list(ctx.items()))))
    assert out["Plaintext"] == b"hello kms" and out["KeyId"].endswith(key_id)
    assert out["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"

    expect_kms_error(kms.decrypt, "InvalidCiphertextException", CiphertextBlob=blob)
    expect_kms_error(kms.decrypt, "InvalidCiphertextException", CiphertextBlob=blob, EncryptionContext={"repository": "app"})
    expect_kms_error(kms.decrypt, "InvalidCiphertextException", CiphertextBlob=blob,
                     EncryptionContext={**ctx, "purpose": "other"})
    expect_kms_error(kms.decrypt, "InvalidCiphertextException", CiphertextBlob=blob[:-1], EncryptionContext=ctx)
    expect_kms_error(kms.decrypt, "InvalidCiphertextException", CiphertextBlob=blob[:30], EncryptionContext=ctx)
    for i in (0, 5, 21, 30, len(blob) - 20, len(blob) - 1):
        forged = bytearray(blob)
        forged[i] ^= 0x40
        expect_kms_error(kms.decrypt, "InvalidCiphertextException", CiphertextBlob=bytes(forged), EncryptionContext=ctx)
    expect_kms_error(kms.decrypt, "InvalidCiphertextException", CiphertextBlob=b"not a kms blob at all")

    other = kms.create_key()["KeyMetadata"]["KeyId"]
    expect_kms_error(kms.decrypt, "IncorrectKeyException", CiphertextBlob=blob, EncryptionContext=ctx, KeyId=other)
    re = kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext=ctx, DestinationKeyId=other,
                        DestinationEncryptionContext={"new": "ctx"})
    assert re["SourceKeyId"].endswith(key_id) and re["KeyId"].endswith(other)
    assert kms.decrypt(CiphertextBlob=re["CiphertextBlob"], EncryptionContext={"new": "ctx"})["Plaintext"] == b"hello kms"

    dk = kms.generate_data_key(KeyId=key_id, NumberOfBytes=24, EncryptionContext={"blob": "1"})
    assert len(dk["Plaintext"]) == 24
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext={"blob": "1"})["Plaintext"] == dk["Plaintext"]
    wp = kms.generate_data_key_without_plaintext(KeyId=key_id, KeySpec="AES_128")
    assert "Plaintext" not in wp
    assert len(kms.decrypt(CiphertextBlob=wp["CiphertextBlob"])["Plaintext"]) == 16


def test_invalid_requests_get_model_errors(root):
    kms = root.boto()
    expect_kms_error(kms.create_key, "UnsupportedOperationException", KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")
    expect_kms_error(kms.create_key, "MalformedPolicyDocumentException", Policy="{not json")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    expect_kms_error(kms.schedule_key_deletion, "ValidationException", KeyId=key_id, PendingWindowInDays=6)
    expect_kms_error(kms.schedule_key_deletion, "ValidationException", KeyId=key_id, PendingWindowInDays=31)
    expect_kms_error(kms.describe_key, "NotFoundException", KeyId="alias/does-not-exist")
    expect_kms_error(kms.describe_key, "NotFoundException", KeyId="00000000-0000-0000-0000-000000000000")
    expect_kms_error(kms.create_alias, "InvalidAliasNameException", AliasName="alias/aws/mine", TargetKeyId=key_id)
    alias = f"alias/{unique('dup')}"
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    expect_kms_error(kms.create_alias, "AlreadyExistsException", AliasName=alias, TargetKeyId=key_id)
    expect_kms_error(kms.generate_data_key, "ValidationException", KeyId=key_id)
    expect_kms_error(kms.cancel_key_deletion, "KMSInvalidStateException", KeyId=key_id)
    expect_kms_error(kms.rotate_key_on_demand, "NotFoundException", KeyId=alias)


def test_key_policy_allows_one_user_and_denies_another(root):
    kms = root.boto()
    # Both users' identity policies allow every KMS action; the key policy decides.
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}
    alice_name, alice = new_user(root, everything)
    _, bob = new_user(root, everything)
    _, nobody = new_user(root)

    # The default key policy delegates to IAM: policies of the account decide.
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = alice.boto().encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    assert bob.boto().decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    expect_kms_error(nobody.boto().encrypt, "AccessDeniedException", KeyId=key_id, Plaintext=b"x")

    # A key policy naming alice only (and the root for administration) shuts bob out despite his IAM policy.
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "admin", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"},
         "Action": ["kms:PutKeyPolicy", "kms:GetKeyPolicy", "kms:DescribeKey"], "Resource": "*"},
        {"Sid": "alice", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:user/{alice_name}"},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
         "Condition": {"StringEquals": {"kms:EncryptionContext:team": "blue"}}},
    ]}
    root.cli("put-key-policy", "--key-id", key_id, "--policy-name", "default", "--policy", json.dumps(policy))
    assert json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]) == policy
    time.sleep(0.1)
    blob = alice.boto().encrypt(KeyId=key_id, Plaintext=b"y", EncryptionContext={"team": "blue"})["CiphertextBlob"]
    assert alice.boto().decrypt(CiphertextBlob=blob, EncryptionContext={"team": "blue"})["Plaintext"] == b"y"
    expect_kms_error(alice.boto().encrypt, "AccessDeniedException", KeyId=key_id, Plaintext=b"y")
    expect_kms_error(alice.boto().encrypt, "AccessDeniedException", KeyId=key_id, Plaintext=b"y",
                     EncryptionContext={"team": "red"})
    expect_kms_error(bob.boto().decrypt, "AccessDeniedException", CiphertextBlob=blob, EncryptionContext={"team": "blue"})
    expect_kms_error(bob.boto().encrypt, "AccessDeniedException", KeyId=key_id, Plaintext=b"y", EncryptionContext={"team": "blue"})
    # Not even the root user may use the key for what the policy does not grant it.
    expect_kms_error(kms.encrypt, "AccessDeniedException", KeyId=key_id, Plaintext=b"y", EncryptionContext={"team": "blue"})

    # The lockout safety check.
    lockout = {"Version": "2012-10-17", "Statement": [policy["Statement"][1]]}
    expect_kms_error(kms.put_key_policy, "MalformedPolicyDocumentException", KeyId=key_id, PolicyName="default",
                     Policy=json.dumps(lockout))


def test_deletion_pending_keys_and_key_listing_pages(root):
    kms = root.boto()
    made = [kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(3)]
    seen, marker = [], None
    while True:
        page = kms.list_keys(Limit=2, **({"Marker": marker} if marker else {}))
        seen += [k["KeyId"] for k in page["Keys"]]
        if not page["Truncated"]:
            break
        marker = page["NextMarker"]
    assert set(made) <= set(seen) and len(seen) == len(set(seen))
    k = made[0]
    kms.schedule_key_deletion(KeyId=k, PendingWindowInDays=30)
    expect_kms_error(kms.encrypt, "KMSInvalidStateException", KeyId=k, Plaintext=b"x")
    expect_kms_error(kms.schedule_key_deletion, "KMSInvalidStateException", KeyId=k)
    assert kms.describe_key(KeyId=k)["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_key_material_is_sealed_under_the_master_key_in_the_documented_format(root):
    """Reads berth.db and master.key directly and opens a ciphertext the way docs/kms.md describes it:
    the material is stored only sealed, and only the master key unseals it."""
    import sqlite3
    import uuid

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    kms = root.boto()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    ctx = {"repo": "app", "a": "b"}
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"documented", EncryptionContext=ctx)["CiphertextBlob"]
    data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")["Plaintext"]

    data = root.server.data_dir
    c = sqlite3.connect(f"file:{data / 'berth.db'}?mode=ro", uri=True)
    try:
        (sealed,) = c.execute("SELECT material FROM kms_key_material WHERE key_id = ? AND version = 1", (key_id,)).fetchone()
    finally:
        c.close()
    assert len(sealed) == 61 and sealed[0] == 1
    master = base64.b64decode((data / "master.key").read_text().strip())
    wrapping = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"berth kms key material v1").derive(master)
    material = AESGCM(wrapping).decrypt(sealed[1:13], sealed[13:], f"{key_id}#1".encode())
    assert len(material) == 32

    # Neither the material nor a data key's plaintext is anywhere under the data directory.
    for path in data.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert material not in content, f"key material in clear in {path}"
            assert data_key not in content, f"a data key in clear in {path}"

    assert blob[:4] == b"BKM\x01" and blob[4:20] == uuid.UUID(key_id).bytes
    assert int.from_bytes(blob[20:24], "big") == 1
    canonical = b"".join(len(s.encode()).to_bytes(4, "big") + s.encode()
                         for k in sorted(ctx, key=lambda k: k.encode()) for s in (k, ctx[k]))
    assert AESGCM(material).decrypt(blob[24:36], blob[36:], blob[:24] + canonical) == b"documented"
