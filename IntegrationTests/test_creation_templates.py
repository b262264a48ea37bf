"""Repository creation templates (issue 15, section 4) on a real `berth serve`, driven by the aws CLI,
boto3 and skopeo:

* every operation with the aws CLI and boto3 (paging with boto3's paginator), and their errors
  (`TemplateAlreadyExistsException`, `TemplateNotFoundException`, `ValidationException`,
  `InvalidParameterException`, `KmsException`);
* a skopeo push to a missing repository takes the `CREATE_ON_PUSH` template with the longest prefix:
  describe-repositories shows its mutability and KMS key, list-tags-for-resource its tags,
  get-lifecycle-policy and get-repository-policy its policies; a push outside it gets the defaults;
* with `BERTH_CREATE_ON_PUSH=false`, only a name a `CREATE_ON_PUSH` template covers can be pushed to
  before it exists;
* a repository created by a pull through the cache (upstream: CNCF Distribution with htpasswd, as in
  test_pull_through.py) takes the `PULL_THROUGH_CACHE` template;
* writing a template needs what it grants (ECR's guide): `ecr:CreateRepository` on the repositories it
  covers, `ecr:PutLifecyclePolicy` / `ecr:SetRepositoryPolicy` / `ecr:TagResource` for what it sets,
  `iam:PassRole` on its `customRoleArn`, whose format is checked;
* the ECR API's `InitiateLayerUpload` and `PutImage` (boto3) on a missing repository create it as a
  `/v2/` push does (create on push, with the `CREATE_ON_PUSH` template).
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from botocore.config import Config

from ecr_helpers import ECRSession, SkopeoECR, _boto_session, check_after_test, running_server, write_oci_layout
from ecr_helpers import skopeo_path, aws_cli  # noqa: F401 (fixtures)
from test_pull_through import (PASSWORD, USER, CLISession, Upstream, layout_digest, secrets_cli,  # noqa: F401
                               skopeo, tools, upstream)

ACCOUNT = "123456789012"
LIFECYCLE = json.dumps({"rules": [{"rulePriority": 1, "description": "keep 5",
                                   "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5},
                                   "action": {"type": "expire"}}]})
POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Sid": "pull", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]})


def error_of(p: subprocess.CompletedProcess) -> str:
    assert p.returncode != 0, p.stdout.decode()
    m = re.search(r"\(([A-Za-z]+)\) when calling", p.stderr.decode())
    assert m, p.stderr.decode()
    return m.group(1)


def kms_client(s: ECRSession):
    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=60)
    return _boto_session().client("kms", endpoint_url=s.server.url, region_name=s.region,
                                  aws_access_key_id=s.access_key, aws_secret_access_key=s.secret_key, config=cfg)


def boto_error(fn, **params) -> str:
    from botocore.exceptions import ClientError
    with pytest.raises(ClientError) as ei:
        fn(**params)
    assert ei.value.response["Error"].get("Message"), ei.value.response
    return ei.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def berth(berth_bin, tmp_path_factory, upstream):
    with running_server(berth_bin, tmp_path_factory.mktemp("berth-rct"),
                        BERTH_PULL_THROUGH_ALLOW_INSECURE_UPSTREAMS="true") as srv:
        yield srv


@pytest.fixture(scope="module")
def session(berth, tmp_path_factory):
    s = CLISession(berth, *berth.root_credentials, tmp=tmp_path_factory.mktemp("aws-rct"))
    yield s
    check_after_test(berth, [s])


@pytest.fixture(scope="module")
def kms_key(session) -> str:
    return kms_client(session).create_key(Description="template key")["KeyMetadata"]["Arn"]


def describe(session, name: str) -> dict:
    return session.client.describe_repositories(repositoryNames=[name])["repositories"][0]


def test_every_operation_with_the_aws_cli_and_boto3(session, kms_key):
    created = session.cli_json(
        "create-repository-creation-template", "--prefix", "ops/team/", "--description", "team images",
        "--applied-for", "CREATE_ON_PUSH", "REPLICATION", "--image-tag-mutability", "IMMUTABLE",
        "--encryption-configuration", f"encryptionType=KMS,kmsKey={kms_key}",
        "--resource-tags", "Key=team,Value=ops", "--lifecycle-policy", LIFECYCLE, "--repository-policy", POLICY,
        "--custom-role-arn", f"arn:aws:iam::{ACCOUNT}:role/templates")
    t = created["repositoryCreationTemplate"]
    assert created["registryId"] == ACCOUNT
    assert t["prefix"] == "ops/team" and t["description"] == "team images"
    assert t["appliedFor"] == ["CREATE_ON_PUSH", "REPLICATION"]
    assert t["encryptionConfiguration"] == {"encryptionType": "KMS", "kmsKey": kms_key}
    assert t["resourceTags"] == [{"Key": "team", "Value": "ops"}]
    assert t["lifecyclePolicy"] == LIFECYCLE and t["repositoryPolicy"] == POLICY
    assert t["customRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/templates"
    assert t["createdAt"] and t["updatedAt"]

    def err(*args):
        return error_of(session.cli(*args, check=False))
    assert err("create-repository-creation-template", "--prefix", "ops/team", "--applied-for",
               "PULL_THROUGH_CACHE") == "TemplateAlreadyExistsException"
    assert err("update-repository-creation-template", "--prefix", "nope", "--description", "x") == "TemplateNotFoundException"
    assert err("delete-repository-creation-template", "--prefix", "nope") == "TemplateNotFoundException"
    assert err("create-repository-creation-template", "--prefix", "ops/kms", "--applied-for", "REPLICATION",
               "--encryption-configuration",
               f"encryptionType=KMS,kmsKey=arn:aws:kms:us-east-1:{ACCOUNT}:key/00000000-0000-0000-0000-000000000000"
               ) == "KmsException"
    assert err("create-repository-creation-template", "--prefix", "ops/bad", "--applied-for", "REPLICATION",
               "--lifecycle-policy", '{"rules":[{"rulePriority":1}]}') == "InvalidParameterException"
    # Past the SDK's own validation, the server's: pattern, enum and range constraints.
    raw = session.raw
    assert boto_error(raw.create_repository_creation_template, prefix="Ops", appliedFor=["REPLICATION"]) == "ValidationException"
    assert boto_error(raw.create_repository_creation_template, prefix="ops/x", appliedFor=["SOMETIMES"]) == "ValidationException"
    assert boto_error(raw.describe_repository_creation_templates, maxResults=0) == "ValidationException"

    updated = session.cli_json("update-repository-creation-template", "--prefix", "ops/team", "--description", "new",
                               "--image-tag-mutability", "MUTABLE", "--encryption-configuration", "encryptionType=AES256")
    u = updated["repositoryCreationTemplate"]
    assert u["description"] == "new" and u["imageTagMutability"] == "MUTABLE"
    assert u["encryptionConfiguration"] == {"encryptionType": "AES256"}
    assert u["lifecyclePolicy"] == LIFECYCLE and u["resourceTags"] == [{"Key": "team", "Value": "ops"}]  # kept
    assert u["createdAt"] == t["createdAt"]

    c = session.client
    for p in ("ops/a", "ops/b", "ops/c"):
        c.create_repository_creation_template(prefix=p, appliedFor=["PULL_THROUGH_CACHE"])
    pages = list(c.get_paginator("describe_repository_creation_templates").paginate(PaginationConfig={"PageSize": 2}))
    prefixes = [x["prefix"] for page in pages for x in page["repositoryCreationTemplates"]]
    assert len(pages) >= 2 and all(page["registryId"] == ACCOUNT for page in pages)
    assert [p for p in prefixes if p.startswith("ops/")] == ["ops/a", "ops/b", "ops/c", "ops/team"]
    some = c.describe_repository_creation_templates(prefixes=["ops/b", "ops/none"])["repositoryCreationTemplates"]
    assert [x["prefix"] for x in some] == ["ops/b"]
    for p in ("ops/a", "ops/b", "ops/c", "ops/team"):
        deleted = session.cli_json("delete-repository-creation-template", "--prefix", p)
        assert deleted["repositoryCreationTemplate"]["prefix"] == p
    left = c.describe_repository_creation_templates()["repositoryCreationTemplates"]
    assert not [x for x in left if x["prefix"].startswith("ops/")]


def test_a_push_to_a_missing_repository_takes_the_template(session, kms_key, skopeo_path, aws_cli, tmp_path):
    c = session.client
    c.create_repository_creation_template(
        prefix="push", appliedFor=["CREATE_ON_PUSH"], imageTagMutability="IMMUTABLE",
        encryptionConfiguration={"encryptionType": "KMS", "kmsKey": kms_key},
        resourceTags=[{"Key": "env", "Value": "prod"}], lifecyclePolicy=LIFECYCLE, repositoryPolicy=POLICY)
    # A longer prefix that lists only PULL_THROUGH_CACHE is passed over by a push.
    c.create_repository_creation_template(prefix="push/cache", appliedFor=["PULL_THROUGH_CACHE"], imageTagMutability="MUTABLE")
    sk = SkopeoECR(skopeo_path, tmp_path / "skopeo")
    sk.login(session)
    image = write_oci_layout(tmp_path / "layout", "v1")
    sk.copy(f"oci:{image.root}:v1", f"docker://{session.server.hostport}/push/cache/app:v1")

    repo = describe(session, "push/cache/app")
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["encryptionConfiguration"] == {"encryptionType": "KMS", "kmsKey": kms_key}
    arn = repo["repositoryArn"]
    tags = session.cli_json("list-tags-for-resource", "--resource-arn", arn)["tags"]
    assert tags == [{"Key": "env", "Value": "prod"}]
    assert session.cli_json("get-lifecycle-policy", "--repository-name", "push/cache/app")["lifecyclePolicyText"] == LIFECYCLE
    assert json.loads(session.cli_json("get-repository-policy", "--repository-name", "push/cache/app")["policyText"]) == json.loads(POLICY)
    # The template's mutability holds: the tag cannot be moved.
    other = write_oci_layout(tmp_path / "layout2", "v1")
    p = sk.copy(f"oci:{other.root}:v1", f"docker://{session.server.hostport}/push/cache/app:v1", check=False)
    assert p.returncode != 0 and b"immutable" in p.stderr

    # Outside every CREATE_ON_PUSH template (createOnPush on): the defaults.
    sk.copy(f"oci:{image.root}:v1", f"docker://{session.server.hostport}/plain/app:v1")
    plain = describe(session, "plain/app")
    assert plain["imageTagMutability"] == "MUTABLE" and plain["encryptionConfiguration"] == {"encryptionType": "AES256"}
    assert session.cli_json("list-tags-for-resource", "--resource-arn", plain["repositoryArn"])["tags"] == []
    assert error_of(session.cli("get-lifecycle-policy", "--repository-name", "plain/app", check=False)) == "LifecyclePolicyNotFoundException"


def test_a_pull_through_the_cache_takes_the_pull_through_template(berth, session, upstream, tmp_path):
    value = json.dumps({"username": USER, "accessToken": PASSWORD})
    arn = json.loads(secrets_cli(session, "create-secret", "--name", "ecr-pullthroughcache/rct",
                                 "--secret-string", value).stdout)["ARN"]
    session.cli_json("create-pull-through-cache-rule", "--ecr-repository-prefix", "mirror",
                     "--upstream-registry-url", upstream.url, "--credential-arn", arn)
    session.cli_json("create-repository-creation-template", "--prefix", "mirror", "--applied-for", "PULL_THROUGH_CACHE",
                     "--image-tag-mutability", "IMMUTABLE", "--resource-tags", "Key=source,Value=upstream",
                     "--lifecycle-policy", LIFECYCLE)
    # A ROOT template for pushes only is not taken by the pull.
    session.cli_json("create-repository-creation-template", "--prefix", "ROOT", "--applied-for", "CREATE_ON_PUSH",
                     "--image-tag-mutability", "MUTABLE_WITH_EXCLUSION",
                     "--image-tag-mutability-exclusion-filters", "filterType=WILDCARD,filter=latest")
    tok = session.registry_password()
    skopeo(tmp_path, "copy", "--retry-times", "0", "--src-tls-verify=false", "--src-creds", f"AWS:{tok}",
           f"docker://{berth.hostport}/mirror/library/debian:bookworm", f"oci:{tmp_path / 'pulled'}:x")
    repo = describe(session, "mirror/library/debian")
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert session.cli_json("list-tags-for-resource", "--resource-arn", repo["repositoryArn"])["tags"] == [
        {"Key": "source", "Value": "upstream"}]
    assert session.cli_json("get-lifecycle-policy", "--repository-name", "mirror/library/debian")["lifecyclePolicyText"] == LIFECYCLE
    session.cli_json("delete-repository-creation-template", "--prefix", "ROOT")


def test_create_on_push_off_creates_only_through_a_template(berth_bin, tmp_path, skopeo_path, aws_cli):
    with running_server(berth_bin, tmp_path / "strict", BERTH_CREATE_ON_PUSH="false") as srv:
        s = ECRSession(srv, *srv.root_credentials, tmp=tmp_path)
        sk = SkopeoECR(skopeo_path, tmp_path / "skopeo")
        sk.login(s)
        image = write_oci_layout(tmp_path / "layout", "v1")
        p = sk.copy(f"oci:{image.root}:v1", f"docker://{srv.hostport}/team/app:v1", check=False)
        assert p.returncode != 0, "a push without a template must not create the repository"
        s.client.create_repository_creation_template(prefix="team", appliedFor=["CREATE_ON_PUSH"],
                                                     imageTagMutability="IMMUTABLE",
                                                     resourceTags=[{"Key": "owner", "Value": "team"}])
        s.client.create_repository_creation_template(prefix="cache", appliedFor=["PULL_THROUGH_CACHE"])
        sk.copy(f"oci:{image.root}:v1", f"docker://{srv.hostport}/team/app:v1")
        repo = describe(s, "team/app")
        assert repo["imageTagMutability"] == "IMMUTABLE"
        assert s.client.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"] == [{"Key": "owner", "Value": "team"}]
        # A template that does not list CREATE_ON_PUSH does not let a push create.
        p = sk.copy(f"oci:{image.root}:v1", f"docker://{srv.hostport}/cache/app:v1", check=False)
        assert p.returncode != 0
        assert boto_error(s.client.describe_repositories, repositoryNames=["cache/app"]) == "RepositoryNotFoundException"
        check_after_test(srv, [s])


def test_writing_a_template_needs_what_it_grants(berth, session):
    import boto3
    import time
    root_key, root_secret = berth.root_credentials
    iam = boto3.client("iam", endpoint_url=berth.url, region_name="us-east-1", aws_access_key_id=root_key,
                       aws_secret_access_key=root_secret)
    name = "templater"
    iam.create_user(UserName=name)
    base = ["ecr:CreateRepositoryCreationTemplate", "ecr:UpdateRepositoryCreationTemplate",
            "ecr:DescribeRepositoryCreationTemplates", "ecr:DeleteRepositoryCreationTemplate"]

    def allow(actions, resource="*"):
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}]}))

    allow(base)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    user = CLISession(berth, key["AccessKeyId"], key["SecretAccessKey"], tmp=session.tmp)
    role = f"arn:aws:iam::{ACCOUNT}:role/service/ecr-templates"

    def eventually(fn, **params):
        """fn once the new identity policy has taken effect (within the authorization cache's lifetime)."""
        from botocore.exceptions import ClientError
        deadline = time.monotonic() + 30
        while True:
            try:
                return fn(**params)
            except ClientError as e:
                if e.response["Error"]["Code"] != "AccessDeniedException" or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    # Without ecr:CreateRepository nothing may be written.
    assert boto_error(user.client.create_repository_creation_template, prefix="perm", appliedFor=["REPLICATION"]) == "AccessDeniedException"
    # CreateRepository on the covered repositories (a pattern that matches repository/perm/*) is enough for a bare template.
    allow(base + ["ecr:CreateRepository"], f"arn:aws:ecr:us-east-1:{ACCOUNT}:*")
    eventually(user.client.create_repository_creation_template, prefix="perm", appliedFor=["REPLICATION"])
    # Each setting needs its own action: nothing is written when one is missing.
    for extra, params in (("ecr:PutLifecyclePolicy", {"lifecyclePolicy": LIFECYCLE}),
                          ("ecr:SetRepositoryPolicy", {"repositoryPolicy": POLICY}),
                          ("ecr:TagResource", {"resourceTags": [{"Key": "k", "Value": "v"}]}),
                          ("iam:PassRole", {"customRoleArn": role})):
        assert boto_error(user.client.update_repository_creation_template, prefix="perm", **params) == "AccessDeniedException", extra
    assert "lifecyclePolicy" not in session.client.describe_repository_creation_templates(prefixes=["perm"])["repositoryCreationTemplates"][0]
    allow(base + ["ecr:CreateRepository", "ecr:PutLifecyclePolicy", "ecr:SetRepositoryPolicy", "ecr:TagResource", "iam:PassRole"])
    eventually(user.client.update_repository_creation_template, prefix="perm", lifecyclePolicy=LIFECYCLE,
               repositoryPolicy=POLICY, resourceTags=[{"Key": "k", "Value": "v"}], customRoleArn=role)
    got = session.client.describe_repository_creation_templates(prefixes=["perm"])["repositoryCreationTemplates"][0]
    assert got["customRoleArn"] == role and got["lifecyclePolicy"] == LIFECYCLE
    # customRoleArn must be an IAM role ARN of the registry's account.
    for bad in (f"arn:aws:iam::{ACCOUNT}:user/someone", f"arn:aws:iam::111111111111:role/r", f"arn:aws:iam:us-east-1:{ACCOUNT}:role/r",
                f"arn:aws:iam::{ACCOUNT}:role/", f"arn:aws:iam::{ACCOUNT}:role/bad name", "not-an-arn"):
        assert boto_error(session.client.update_repository_creation_template, prefix="perm", customRoleArn=bad) == "InvalidParameterException", bad
    session.client.delete_repository_creation_template(prefix="perm")


def test_the_ecr_api_push_creates_only_through_a_create_on_push_template(session):
    from ecr_helpers import build_image, upload_layer
    client = session.client
    # No CREATE_ON_PUSH template covers the name: RepositoryNotFoundException, as in ECR (even with createOnPush on).
    assert boto_error(client.initiate_layer_upload, repositoryName="apiless/app") == "RepositoryNotFoundException"
    img = build_image("apiless/app")
    assert boto_error(client.put_image, repositoryName="apiless/app", imageManifest=img.manifest.decode(), imageTag="v1") == "RepositoryNotFoundException"
    assert boto_error(client.describe_repositories, repositoryNames=["apiless/app"]) == "RepositoryNotFoundException"
    # With one, InitiateLayerUpload creates the repository with the template's settings; the push completes.
    client.create_repository_creation_template(prefix="apipush", appliedFor=["CREATE_ON_PUSH"], imageTagMutability="IMMUTABLE",
                                               resourceTags=[{"Key": "made-by", "Value": "api"}])
    img = build_image("apipush/app")
    upload_layer(client, "apipush/app", img.config)
    for layer in img.layers:
        upload_layer(client, "apipush/app", layer)
    client.put_image(repositoryName="apipush/app", imageManifest=img.manifest.decode(), imageTag="v1")
    repo = describe(session, "apipush/app")
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert client.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"] == [{"Key": "made-by", "Value": "api"}]
    assert client.describe_images(repositoryName="apipush/app")["imageDetails"][0]["imageDigest"] == img.digest
    # PutImage alone creates it too (the manifest then needs its layers there: LayersNotFoundException).
    other = build_image("apipush/other")
    assert boto_error(client.put_image, repositoryName="apipush/other", imageManifest=other.manifest.decode(), imageTag="v1") == "LayersNotFoundException"
    assert describe(session, "apipush/other")["imageTagMutability"] == "IMMUTABLE"
    client.delete_repository_creation_template(prefix="apipush")
