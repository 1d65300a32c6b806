# Data, pipeline artifacts and models, each: versioned, SSE-KMS with a bucket key, every kind of
# public access blocked, ACLs disabled, HTTPS-only, access-logged, with lifecycle rules.
data "aws_caller_identity" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  # Bucket names are global: the account id keeps them unique across accounts.
  # Lineage: a registered model version names its data by content hash and its MLflow artifacts
  # by path, so nothing either needs may age out. Source data is written content-addressed
  # (churn/raw/sha256=<hex>/..., `make data-upload`): objects are never overwritten and no data
  # version expires. Only KFP's intermediate outputs under the pipeline root expire; MLflow's
  # artifacts (mlflow/) and models are kept.
  buckets = {
    data      = { noncurrent_days = null, expire_days = null, expire_prefix = null }
    artifacts = { noncurrent_days = var.noncurrent_version_days, expire_days = var.artifact_expiry_days, expire_prefix = var.pipeline_root_prefix }
    models    = { noncurrent_days = var.model_noncurrent_version_days, expire_days = null, expire_prefix = null }
  }
}

module "key" {
  source      = "../kms"
  name        = "${var.name_prefix}-storage"
  description = "Encrypts the ${var.name_prefix} data, artifact and model buckets and the ECR images"
  tags        = var.tags
}

resource "aws_s3_bucket" "this" {
  # checkov:skip=CKV_AWS_144:Single-region platform: versioning keeps every object recoverable; a DR copy in a second region is an org-level choice, not this module's.
  for_each      = local.buckets
  bucket        = "${var.name_prefix}-${each.key}-${local.account_id}"
  force_destroy = false
  tags          = merge(var.tags, { Purpose = each.key })
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = local.buckets
  bucket   = aws_s3_bucket.this[each.key].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = local.buckets
  bucket   = aws_s3_bucket.this[each.key].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = module.key.key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each                = local.buckets
  bucket                  = aws_s3_bucket.this[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = local.buckets
  bucket   = aws_s3_bucket.this[each.key].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_policy" "this" {
  for_each = local.buckets
  bucket   = aws_s3_bucket.this[each.key].id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [local.tls_only[each.key]]
  })
  # A policy put before the public access block could be judged public; order them.
  depends_on = [aws_s3_bucket_public_access_block.this]
}

resource "aws_s3_bucket_logging" "this" {
  for_each      = local.buckets
  bucket        = aws_s3_bucket.this[each.key].id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "${each.key}/"
}

# Object events go to EventBridge, where a rule can start a retraining run when new data lands.
resource "aws_s3_bucket_notification" "this" {
  for_each    = local.buckets
  bucket      = aws_s3_bucket.this[each.key].id
  eventbridge = true
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = local.buckets
  bucket   = aws_s3_bucket.this[each.key].id

  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  dynamic "rule" {
    for_each = local.buckets[each.key].noncurrent_days == null ? [] : [local.buckets[each.key].noncurrent_days]
    content {
      id     = "expire-old-versions"
      status = "Enabled"
      filter {}
      noncurrent_version_expiration {
        noncurrent_days = rule.value
      }
    }
  }

  # KFP's intermediate outputs are reproducible from data + code: they may age out.
  dynamic "rule" {
    for_each = local.buckets[each.key].expire_days == null ? [] : [local.buckets[each.key].expire_days]
    content {
      id     = "expire-pipeline-outputs"
      status = "Enabled"
      filter {
        prefix = local.buckets[each.key].expire_prefix
      }
      transition {
        days          = 30
        storage_class = "STANDARD_IA"
      }
      expiration {
        days = rule.value
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}
