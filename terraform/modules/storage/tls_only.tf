# One HTTPS-only statement per bucket: any request over plain HTTP is denied, whoever sends it.
locals {
  bucket_arns = merge(
    { for name, b in aws_s3_bucket.this : name => b.arn },
    { access_logs = aws_s3_bucket.access_logs.arn },
  )
  tls_only = {
    for name, arn in local.bucket_arns : name => {
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [arn, "${arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }
  }
}
