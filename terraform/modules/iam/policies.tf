# Least-privilege permissions, one policy per workload. Object access is scoped to bucket
# prefixes where the workload only needs part of a bucket; KMS use is limited to calls S3 makes
# on the workload's behalf (kms:ViaService), so the key cannot be used directly.
data "aws_region" "current" {}

locals {
  models_prefix = trimsuffix(var.models_prefix, "/")
  mlflow_prefix = trimsuffix(var.mlflow_artifact_prefix, "/")
  models_arn    = var.bucket_arns["models"]

  kms_via_s3 = {
    Sid       = "UseStorageKeyThroughS3"
    Effect    = "Allow"
    Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
    Resource  = var.kms_key_arn
    Condition = { StringEquals = { "kms:ViaService" = "s3.${data.aws_region.current.name}.amazonaws.com" } }
  }
  object_read  = ["s3:GetObject", "s3:GetObjectVersion"]
  object_write = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]

  model_reader = {
    Version = "2012-10-17"
    Statement = [
      { Sid = "ReadModels", Effect = "Allow", Action = local.object_read, Resource = "${local.models_arn}/${local.models_prefix}/*" },
      # KServe's storage initializer starts with HeadBucket, which S3 authorises as s3:ListBucket
      # with no s3:prefix at all: a prefix condition here denies every model download
      # (tests/infra/test_iam_client_calls.py replays the real downloader's requests).
      { Sid = "ListModels", Effect = "Allow", Action = "s3:ListBucket", Resource = local.models_arn },
      merge(local.kms_via_s3, { Action = ["kms:Decrypt"] }),
    ]
  }

  # The pipeline reads and writes its data and artifacts, and publishes exported models under
  # the models prefix (KServe's storageUri points there); it never touches other model paths.
  pipeline_runner = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ReadWriteDataAndArtifacts"
        Effect   = "Allow"
        Action   = concat(local.object_read, local.object_write)
        Resource = ["${var.bucket_arns["data"]}/*", "${var.bucket_arns["artifacts"]}/*", "${local.models_arn}/${local.models_prefix}/*"]
      },
      {
        Sid      = "ListOwnBuckets"
        Effect   = "Allow"
        Action   = ["s3:ListBucket", "s3:GetBucketLocation"]
        Resource = [var.bucket_arns["data"], var.bucket_arns["artifacts"], local.models_arn]
      },
      local.kms_via_s3,
    ]
  }

  mlflow_server = {
    Version = "2012-10-17"
    Statement = concat(
      [
        {
          Sid      = "ReadWriteMlflowArtifacts"
          Effect   = "Allow"
          Action   = concat(local.object_read, local.object_write)
          Resource = "${var.bucket_arns["artifacts"]}/${local.mlflow_prefix}/*"
        },
        {
          Sid       = "ListMlflowArtifacts"
          Effect    = "Allow"
          Action    = "s3:ListBucket"
          Resource  = var.bucket_arns["artifacts"]
          Condition = { StringLike = { "s3:prefix" = ["${local.mlflow_prefix}/*", "${local.mlflow_prefix}/"] } }
        },
        local.kms_via_s3,
      ],
      # The backend-store password lives in the RDS-managed secret, when there is a database.
      var.database_secret_arn == null ? [] : [{
        Sid      = "ReadDatabaseSecret"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
        Resource = var.database_secret_arn
      }],
    )
  }
}
