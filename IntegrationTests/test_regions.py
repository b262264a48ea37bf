"""Regions (issue #15 §1): one deployment presents several regions, each account x region a registry of
its own. Driven with the aws CLI, boto3, skopeo and plain /v2/ requests against a real `berth serve`.

* The SigV4 credential scope picks the region on the ECR API; on /v2/ the host
  `<account>.dkr.ecr.<region>.<domain>` or the region bound into the registry token does.
* A region the deployment does not serve is refused (InvalidSignatureException, as today); `regions: *`
  serves any well-formed region name.
* Data written before regions belongs to the home region; a `region` setting that would move it is refused.
"""

from __future__ import annotations

import json
import subprocess

import pytest
import requests
from botocore.exceptions import ClientError

import berth_helpers as bh
from ecr_helpers import (ACCOUNT_ID, AWS_CLI, ECRServer, ECRSession, SkopeoECR, aws_cli, check_after_test,  # noqa: F401
                         default_env, skopeo_path, write_oci_layout)
from berth_helpers import unique


@pytest.fixture
def regional(berth_bin, tmp_path):
    """A berth serving us-east-1 (its default and home region), eu-west-1 and ap-south-1."""
    srv = ECRServer(berth_bin, tmp_path / "berth", env={**default_env(), "BERTH_REGIONS": "eu-west-1, ap-south-1"})
    srv.start()
    sessions = {r: ECRSession(srv, *srv.root_credentials, region=r, tmp=tmp_path) for r in ("us-east-1", "eu-west-1")}
    try:
        yield srv, sessions
        check_after_test(srv, sessions.values())
    finally:
        srv.dispose()


def repo_names(session: ECRSession) -> list:
    return sorted(r["repositoryName"] for r in session.cli_json("describe-repositories")["repositories"])


def test_each_region_is_a_registry_of_its_own(regional):
    srv, s = regional
    us, eu = s["us-east-1"], s["eu-west-1"]
    name = unique("app")
    created = eu.cli_json("create-repository", "--repository-name", name, "--image-tag-mutability", "IMMUTABLE")["repository"]
    assert created["repositoryArn"] == f"arn:aws:ecr:eu-west-1:{ACCOUNT_ID}:repository/{name}"
    assert created["registryId"] == ACCOUNT_ID
    # The same name in another region is another repository, with its own settings.
    home = us.cli_json("create-repository", "--repository-name", name)["repository"]
    assert home["repositoryArn"] == f"arn:aws:ecr:us-east-1:{ACCOUNT_ID}:repository/{name}"
    assert home["imageTagMutability"] == "MUTABLE"
    only_eu = unique("only-eu")
    eu.client.create_repository(repositoryName=only_eu)
    assert only_eu in repo_names(eu) and only_eu not in repo_names(us)
    with pytest.raises(ClientError) as e:
        us.client.describe_repositories(repositoryNames=[only_eu])
    assert e.value.response["Error"]["Code"] == "RepositoryNotFoundException"
    # Registry-level configuration is per region too.
    eu.client.put_registry_scanning_configuration(scanType="BASIC", rules=[
        {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}]}])
    assert eu.client.get_registry_scanning_configuration()["scanningConfiguration"]["rules"]
    assert us.client.get_registry_scanning_configuration()["scanningConfiguration"]["rules"] == []
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "pull", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
        "Action": ["ecr:BatchGetImage"], "Resource": f"arn:aws:ecr:eu-west-1:{ACCOUNT_ID}:repository/*"}]})
    eu.client.put_registry_policy(policyText=policy)
    with pytest.raises(ClientError) as e:
        us.client.get_registry_policy()
    assert e.value.response["Error"]["Code"] == "RegistryPolicyNotFoundException"


def test_the_registry_token_carries_its_region_on_v2(regional, skopeo_path, tmp_path):
    srv, s = regional
    us, eu = s["us-east-1"], s["eu-west-1"]
    name = unique("pushed")
    layout = write_oci_layout(tmp_path / "layout", "v1")
    # skopeo logged in with `aws ecr get-login-password --region eu-west-1`: pushes land in eu-west-1.
    sk = SkopeoECR(skopeo_path, tmp_path / "skopeo")
    sk.login(eu)
    sk.copy(f"oci:{layout.root}:v1", f"docker://{srv.hostport}/{name}:v1", "--preserve-digests")
    images = eu.cli_json("describe-images", "--repository-name", name)["imageDetails"]
    assert [i["imageDigest"] for i in images] == [layout.digest]
    assert name not in repo_names(us)
    # The same server, a us-east-1 token: that registry has no such repository.
    us_v2 = us.v2()
    r = us_v2.get(f"/v2/{name}/manifests/v1")
    bh.assert_oci_error(r, 404, ["NAME_UNKNOWN"])
    assert name not in us_v2.get("/v2/_catalog").json().get("repositories", [])
    eu_v2 = eu.v2()
    r = eu_v2.get(f"/v2/{name}/manifests/v1", headers={"Accept": bh.OCI_MANIFEST})
    assert r.status_code == 200 and bh.sha256(r.content) == layout.digest
    assert name in eu_v2.get("/v2/_catalog").json()["repositories"]
    # Pull back through skopeo and compare.
    out = tmp_path / "pulled"
    sk.copy(f"docker://{srv.hostport}/{name}:v1", f"oci:{out}:v1", "--preserve-digests")
    assert layout.digest.split(":")[1] in {p.name for p in (out / "blobs" / "sha256").iterdir()}
    # GetDownloadUrlForLayer: the presigned URL is signed for the region, and serves that region's blob.
    layer = eu.client.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "v1"}])["images"][0]
    digest = json.loads(layer["imageManifest"])["layers"][0]["digest"]
    url = eu.client.get_download_url_for_layer(repositoryName=name, layerDigest=digest)["downloadUrl"]
    assert "eu-west-1" in url
    got = requests.get(url, timeout=30)
    assert got.status_code == 200 and bh.sha256(got.content) == digest


def test_the_host_names_the_region(berth_bin, tmp_path):
    """With `registryDomain`, repository URIs and proxy endpoints name the region, and a /v2/ request's
    host selects it (a us-east-1 token used on an eu-west-1 host addresses eu-west-1)."""
    env = {**default_env(), "BERTH_REGIONS": "eu-west-1", "BERTH_REGISTRY_DOMAIN": "registry.test"}
    srv = ECRServer(berth_bin, tmp_path / "berth", env=env)
    srv.start()
    us = ECRSession(srv, *srv.root_credentials, region="us-east-1", tmp=tmp_path)
    eu = ECRSession(srv, *srv.root_credentials, region="eu-west-1", tmp=tmp_path)
    try:
        name = unique("hosted")
        repo = eu.client.create_repository(repositoryName=name)["repository"]
        assert repo["repositoryUri"] == f"{ACCOUNT_ID}.dkr.ecr.eu-west-1.registry.test:{srv.port}/{name}"
        assert eu.authorization()["proxyEndpoint"] == f"http://{ACCOUNT_ID}.dkr.ecr.eu-west-1.registry.test:{srv.port}"
        assert us.authorization()["proxyEndpoint"] == f"http://{ACCOUNT_ID}.dkr.ecr.us-east-1.registry.test:{srv.port}"
        v2 = us.v2()
        eu_host = {"Host": f"{ACCOUNT_ID}.dkr.ecr.eu-west-1.registry.test:{srv.port}"}
        us_host = {"Host": f"{ACCOUNT_ID}.dkr.ecr.us-east-1.registry.test:{srv.port}"}
        # Push through the eu-west-1 host: two blobs (monolithic POST) and a manifest.
        config = bh.random_config()
        layer = b"region layer " + unique().encode()
        for data in (config, layer):
            r = v2.post(f"/v2/{name}/blobs/uploads/?digest={bh.sha256(data)}", data=data,
                        headers={**eu_host, "Content-Type": "application/octet-stream"})
            assert r.status_code == 201, bh.describe(r)
        manifest = bh.make_manifest(bh.descriptor(bh.OCI_CONFIG, config), [bh.descriptor(bh.OCI_LAYER, layer)])
        r = v2.put(f"/v2/{name}/manifests/v1", data=manifest, headers={**eu_host, "Content-Type": bh.OCI_MANIFEST})
        assert r.status_code == 201, bh.describe(r)
        assert [i["imageTags"] for i in eu.client.describe_images(repositoryName=name)["imageDetails"]] == [["v1"]]
        r = v2.get(f"/v2/{name}/tags/list", headers=us_host)
        bh.assert_oci_error(r, 404, ["NAME_UNKNOWN"])
        # A host naming a region this deployment does not serve is refused, never served from another.
        r = v2.get(f"/v2/{name}/tags/list", headers={"Host": f"{ACCOUNT_ID}.dkr.ecr.sa-east-1.registry.test:{srv.port}"})
        bh.assert_oci_error(r, 403, ["DENIED"])
        check_after_test(srv, [us, eu])
    finally:
        srv.dispose()


def test_regions_not_served_are_refused_and_the_wildcard_serves_any(berth_bin, tmp_path):
    srv = ECRServer(berth_bin, tmp_path / "one", env=default_env())
    srv.start()
    try:
        south = ECRSession(srv, *srv.root_credentials, region="sa-east-1", tmp=tmp_path)
        with pytest.raises(ClientError) as e:
            south.client.describe_repositories()
        assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
        assert "region" in e.value.response["Error"]["Message"]
    finally:
        srv.dispose()
    srv = ECRServer(berth_bin, tmp_path / "any", env={**default_env(), "BERTH_REGIONS": "*"})
    srv.start()
    try:
        me = ECRSession(srv, *srv.root_credentials, region="me-central-1", tmp=tmp_path)
        repo = me.client.create_repository(repositoryName="anywhere")["repository"]
        assert repo["repositoryArn"] == f"arn:aws:ecr:me-central-1:{ACCOUNT_ID}:repository/anywhere"
        home = ECRSession(srv, *srv.root_credentials, region="us-east-1", tmp=tmp_path)
        assert home.client.describe_repositories()["repositories"] == []
        check_after_test(srv, [me, home])
    finally:
        srv.dispose()


def restart_with_eu_west_1(srv, tmp_path):
    """Restarts a berth started without `regions` with eu-west-1 added: root sessions of both regions."""
    srv.stop()
    srv.env["BERTH_REGIONS"] = "eu-west-1"
    srv.start()
    return (ECRSession(srv, *srv.root_credentials, region="us-east-1", tmp=tmp_path),
            ECRSession(srv, *srv.root_credentials, region="eu-west-1", tmp=tmp_path))


def test_data_from_before_regions_stays_in_the_home_region(berth_bin, tmp_path):
    """A registry started without `regions` (as every earlier Berth) keeps its repositories in its region
    when regions are added; a `region` setting that would move them to another region is refused."""
    base = tmp_path / "berth"
    srv = ECRServer(berth_bin, base, env=default_env())
    srv.start()
    us = ECRSession(srv, *srv.root_credentials, region="us-east-1", tmp=tmp_path)
    name = unique("old")
    us.client.create_repository(repositoryName=name)
    bh_client = us.v2()
    bh_client.push_image(name, tag="v1")
    us, eu = restart_with_eu_west_1(srv, tmp_path)
    try:
        assert [r["repositoryName"] for r in us.client.describe_repositories()["repositories"]] == [name]
        assert eu.client.describe_repositories()["repositories"] == []
        assert us.v2().get(f"/v2/{name}/tags/list").json()["tags"] == ["v1"]
    finally:
        srv.stop()

    # Moving the default region would move the repositories: refused at start, with the way out named.
    srv.env["BERTH_REGION"] = "eu-west-1"
    srv.env["BERTH_REGIONS"] = "us-east-1"
    cmd = [str(berth_bin), "serve", "--data-dir", str(srv.data_dir), "--host", bh.HOST, "--port", str(bh.free_port())]
    p = subprocess.run(cmd, capture_output=True, env=srv.process_env(), timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode != 0
    err = p.stderr.decode(errors="replace")
    assert "home region" in err and "us-east-1" in err, err[-2000:]
    srv.dispose()


def test_identity_policies_name_regions_in_their_resources(regional):
    """An IAM user allowed ecr:* on us-east-1's repositories only: refused in eu-west-1 (the request's
    repository ARNs name the region), allowed in us-east-1."""
    import boto3
    srv, s = regional
    key_id, secret = srv.root_credentials
    iam = boto3.client("iam", endpoint_url=srv.url, region_name="us-east-1", aws_access_key_id=key_id,
                       aws_secret_access_key=secret)
    user = unique("regional")
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="us-only", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecr:*",
                                                "Resource": f"arn:aws:ecr:us-east-1:{ACCOUNT_ID}:repository/*"}]}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    us = ECRSession(srv, key["AccessKeyId"], key["SecretAccessKey"], region="us-east-1", audit=s["us-east-1"].audit)
    eu = ECRSession(srv, key["AccessKeyId"], key["SecretAccessKey"], region="eu-west-1", audit=s["us-east-1"].audit)
    name = unique("scoped")
    us.client.create_repository(repositoryName=name)
    with pytest.raises(ClientError) as e:
        eu.client.create_repository(repositoryName=name)
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    assert f"arn:aws:ecr:eu-west-1:{ACCOUNT_ID}:repository/{name}" in e.value.response["Error"]["Message"]


def kms_cli(session: ECRSession, *args, check: bool = True):
    """`aws kms …` with the session's credentials and region; the parsed output, or the process."""
    cmd = [AWS_CLI, "kms", *args, "--endpoint-url", session.server.url, "--region", session.region, "--output", "json"]
    p = subprocess.run(cmd, capture_output=True, env=session.cli_env(), timeout=120, stdin=subprocess.DEVNULL)
    if not check:
        return p
    assert p.returncode == 0, f"{' '.join(cmd)} exited {p.returncode}\n{p.stderr.decode(errors='replace')[-2000:]}"
    out = p.stdout.decode().strip()
    return json.loads(out) if out else {}


def key_ids(session: ECRSession) -> set:
    return {k["KeyId"] for k in kms_cli(session, "list-keys")["Keys"]}


def test_kms_keys_and_aliases_are_regional(berth_bin, skopeo_path, tmp_path):
    """KMS keys and aliases belong to a region (as in AWS); keys made before regions stay in the home
    region with their ARNs, and the blobs sealed under them still open."""
    srv = ECRServer(berth_bin, tmp_path / "berth", env=default_env())
    srv.start()
    sk = SkopeoECR(skopeo_path, tmp_path / "skopeo")
    layout = write_oci_layout(tmp_path / "layout", "v1")
    us = ECRSession(srv, *srv.root_credentials, region="us-east-1", tmp=tmp_path)
    old = kms_cli(us, "create-key", "--description", "before regions")["KeyMetadata"]
    assert old["Arn"] == f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/{old['KeyId']}"
    kms_cli(us, "create-alias", "--alias-name", "alias/app", "--target-key-id", old["KeyId"])
    old_repo = unique("old-kms")
    us.client.create_repository(repositoryName=old_repo, encryptionConfiguration={"encryptionType": "KMS", "kmsKey": "alias/app"})
    sk.login(us)
    sk.copy(f"oci:{layout.root}:v1", f"docker://{srv.hostport}/{old_repo}:v1", "--preserve-digests")
    us, eu = restart_with_eu_west_1(srv, tmp_path)
    try:
        # The key made before regions: the home region's, its ARN unchanged, unknown in eu-west-1.
        assert kms_cli(us, "describe-key", "--key-id", old["KeyId"])["KeyMetadata"]["Arn"] == old["Arn"]
        assert key_ids(us) == {old["KeyId"]} and key_ids(eu) == set()
        p = kms_cli(eu, "describe-key", "--key-id", old["KeyId"], check=False)
        assert p.returncode != 0 and b"NotFoundException" in p.stderr, p.stderr
        # A key made in eu-west-1 names eu-west-1 and is invisible in us-east-1, by id and by ARN.
        new = kms_cli(eu, "create-key", "--description", "eu")["KeyMetadata"]
        assert new["Arn"] == f"arn:aws:kms:eu-west-1:{ACCOUNT_ID}:key/{new['KeyId']}"
        assert key_ids(eu) == {new["KeyId"]} and key_ids(us) == {old["KeyId"]}
        for ref in (new["KeyId"], new["Arn"]):
            p = kms_cli(us, "describe-key", "--key-id", ref, check=False)
            assert p.returncode != 0 and b"NotFoundException" in p.stderr, p.stderr
        # The same alias name in each region, each pointing at its region's key.
        kms_cli(eu, "create-alias", "--alias-name", "alias/app", "--target-key-id", new["KeyId"])
        assert kms_cli(eu, "describe-key", "--key-id", "alias/app")["KeyMetadata"]["KeyId"] == new["KeyId"]
        assert kms_cli(us, "describe-key", "--key-id", "alias/app")["KeyMetadata"]["KeyId"] == old["KeyId"]
        eu_aliases = {a["AliasName"]: a for a in kms_cli(eu, "list-aliases")["Aliases"]}
        assert eu_aliases["alias/app"]["AliasArn"] == f"arn:aws:kms:eu-west-1:{ACCOUNT_ID}:alias/app"

        # ECR: kmsKey resolves in the repository's region; another region's key ARN is refused.
        c = eu.client
        for foreign in (old["Arn"], f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:alias/app", f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:alias/aws/ecr"):
            with pytest.raises(ClientError) as e:
                c.create_repository(repositoryName=unique("foreign"),
                                    encryptionConfiguration={"encryptionType": "KMS", "kmsKey": foreign})
            assert e.value.response["Error"]["Code"] == "KmsException", (foreign, e.value.response)
        by_alias, by_default = unique("eu-alias"), unique("eu-default")
        r = c.create_repository(repositoryName=by_alias, encryptionConfiguration={"encryptionType": "KMS", "kmsKey": "alias/app"})
        assert r["repository"]["encryptionConfiguration"]["kmsKey"] == new["Arn"]
        r = c.create_repository(repositoryName=by_default, encryptionConfiguration={"encryptionType": "KMS"})
        managed = r["repository"]["encryptionConfiguration"]["kmsKey"]
        assert managed.startswith(f"arn:aws:kms:eu-west-1:{ACCOUNT_ID}:key/"), managed
        eu_aliases = {a["AliasName"]: a for a in kms_cli(eu, "list-aliases")["Aliases"]}
        assert managed.endswith(eu_aliases["alias/aws/ecr"]["TargetKeyId"])
        policy = json.loads(kms_cli(eu, "get-key-policy", "--key-id", managed, "--policy-name", "default")["Policy"])
        assert "ecr.eu-west-1.amazonaws.com" in json.dumps(policy)
        assert "alias/aws/ecr" not in {a["AliasName"] for a in kms_cli(us, "list-aliases")["Aliases"]}

        # skopeo round trips through both eu-west-1 KMS repositories, and the old home-region repository.
        sk.login(eu)
        for name in (by_alias, by_default):
            sk.copy(f"oci:{layout.root}:v1", f"docker://{srv.hostport}/{name}:v1", "--preserve-digests")
            out = tmp_path / f"pulled-{name}"
            sk.copy(f"docker://{srv.hostport}/{name}:v1", f"oci:{out}:v1", "--preserve-digests")
            assert layout.digest.split(":")[1] in {p.name for p in (out / "blobs" / "sha256").iterdir()}
        sk.login(us)
        out = tmp_path / "pulled-old"
        sk.copy(f"docker://{srv.hostport}/{old_repo}:v1", f"oci:{out}:v1", "--preserve-digests")
        assert layout.digest.split(":")[1] in {p.name for p in (out / "blobs" / "sha256").iterdir()}
        assert us.client.describe_repositories(repositoryNames=[old_repo])["repositories"][0][
            "encryptionConfiguration"]["kmsKey"] == old["Arn"]
        # Disabling the eu-west-1 key stops pulls of its repository (the key slots name its eu-west-1 ARN).
        image = c.batch_get_image(repositoryName=by_alias, imageIds=[{"imageTag": "v1"}])["images"][0]
        layer = json.loads(image["imageManifest"])["layers"][0]["digest"]
        kms_cli(eu, "disable-key", "--key-id", new["KeyId"])
        r = eu.v2().get(f"/v2/{by_alias}/blobs/{layer}")
        assert r.status_code == 403 and "DisabledException" in r.json()["errors"][0]["message"], bh.describe(r)
        kms_cli(eu, "enable-key", "--key-id", new["KeyId"])
    finally:
        srv.dispose()
