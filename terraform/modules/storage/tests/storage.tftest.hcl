# AWS is mocked (mock_provider): these runs check what the configuration asks AWS for, offline.
mock_provider "aws" {
  source = "../../tests/mocks"
}

variables {
  name_prefix = "churn-test"
}

run "buckets_are_private_encrypted_versioned_and_tls_only" {
  assert {
    condition     = length(aws_s3_bucket.this) == 3 && alltrue([for k in ["data", "artifacts", "models"] : contains(keys(aws_s3_bucket.this), k)])
    error_message = "Expected exactly the data, artifacts and models buckets."
  }
  assert {
    condition = alltrue([
      for b in concat(values(aws_s3_bucket_public_access_block.this), [aws_s3_bucket_public_access_block.access_logs]) :
      b.block_public_acls && b.block_public_policy && b.ignore_public_acls && b.restrict_public_buckets
    ])
    error_message = "Every bucket must block all four kinds of public access."
  }
  assert {
    condition = alltrue([
      for c in values(aws_s3_bucket_server_side_encryption_configuration.this) :
      one(c.rule).apply_server_side_encryption_by_default[0].sse_algorithm == "aws:kms" &&
      one(c.rule).apply_server_side_encryption_by_default[0].kms_master_key_id == module.key.key_arn
    ])
    error_message = "Data, artifact and model buckets must use SSE-KMS with the storage key."
  }
  assert {
    condition     = alltrue([for v in concat(values(aws_s3_bucket_versioning.this), [aws_s3_bucket_versioning.access_logs]) : v.versioning_configuration[0].status == "Enabled"])
    error_message = "Every bucket must be versioned."
  }
  assert {
    condition     = alltrue([for o in values(aws_s3_bucket_ownership_controls.this) : o.rule[0].object_ownership == "BucketOwnerEnforced"])
    error_message = "ACLs must be disabled (BucketOwnerEnforced)."
  }
  assert {
    condition = alltrue([
      for name, p in merge(aws_s3_bucket_policy.this, { access_logs = aws_s3_bucket_policy.access_logs }) :
      anytrue([
        for s in jsondecode(p.policy).Statement :
        s.Effect == "Deny" && s.Principal == "*" && s.Action == "s3:*" && try(s.Condition.Bool["aws:SecureTransport"], "") == "false"
      ])
    ])
    error_message = "Every bucket policy must deny requests that do not use TLS."
  }
  assert {
    condition = alltrue([
      for p in concat(values(aws_s3_bucket_policy.this), [aws_s3_bucket_policy.access_logs]) :
      alltrue([for s in jsondecode(p.policy).Statement : s.Effect == "Deny" || s.Principal != "*"])
    ])
    error_message = "No bucket policy may allow anything to Principal *."
  }
  assert {
    condition = alltrue([
      for l in values(aws_s3_bucket_lifecycle_configuration.this) :
      anytrue([for r in l.rule : length(r.abort_incomplete_multipart_upload) > 0])
    ])
    error_message = "Every bucket must abort incomplete multipart uploads."
  }
  assert {
    condition     = alltrue([for l in values(aws_s3_bucket_logging.this) : l.target_bucket == aws_s3_bucket.access_logs.id])
    error_message = "Every bucket must send access logs to the access-log bucket."
  }
}

# Lineage: a registered version needs its MLflow artifacts (artifacts bucket, mlflow/) and the
# exact data it was trained on (data bucket) for as long as the version exists.
run "retention_keeps_what_a_registered_version_needs" {
  command = plan
  assert {
    condition = alltrue(flatten([
      for r in aws_s3_bucket_lifecycle_configuration.this["artifacts"].rule : [
        for e in r.expiration : length(r.filter) == 1 && r.filter[0].prefix == "kfp/"
      ]
    ]))
    error_message = "Current artifact versions may expire only under the KFP pipeline root (kfp/), never MLflow's mlflow/."
  }
  assert {
    condition = alltrue(flatten([
      for b in ["data", "models"] : [
        for r in aws_s3_bucket_lifecycle_configuration.this[b].rule : length(r.expiration) == 0
      ]
    ]))
    error_message = "Data and models never expire."
  }
  assert {
    condition = alltrue([
      for r in aws_s3_bucket_lifecycle_configuration.this["data"].rule : length(r.noncurrent_version_expiration) == 0
    ])
    error_message = "No data version may expire: an old data_hash must stay reproducible."
  }
}

run "pipeline_root_cannot_be_mlflow" {
  command = plan
  variables {
    pipeline_root_prefix = "mlflow/"
  }
  expect_failures = [var.pipeline_root_prefix]
}

run "image_repositories_scan_on_push_with_immutable_tags" {
  assert {
    condition     = toset(keys(aws_ecr_repository.this)) == toset(["components", "serving", "mlflow"])
    error_message = "Expected the components, serving and mlflow repositories."
  }
  assert {
    condition = alltrue([
      for r in values(aws_ecr_repository.this) :
      r.image_tag_mutability == "IMMUTABLE" && r.image_scanning_configuration[0].scan_on_push &&
      r.encryption_configuration[0].encryption_type == "KMS"
    ])
    error_message = "Repositories must be immutable, scan on push and use KMS."
  }
}

run "rejects_names_s3_would_refuse" {
  command = plan
  variables {
    name_prefix = "Churn_Test"
  }
  expect_failures = [var.name_prefix]
}
