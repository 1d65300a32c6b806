output "bucket_names" {
  description = "Bucket names by purpose: data, artifacts, models."
  value       = { for k, b in aws_s3_bucket.this : k => b.bucket }
}

output "bucket_arns" {
  description = "Bucket ARNs by purpose: data, artifacts, models."
  value       = { for k, b in aws_s3_bucket.this : k => b.arn }
}

output "kms_key_arn" {
  description = "Key encrypting the buckets and images (IRSA roles need it to read and write)."
  value       = module.key.key_arn
}

output "ecr_repository_urls" {
  description = "Repository URLs by image name."
  value       = { for k, r in aws_ecr_repository.this : k => r.repository_url }
}

output "ecr_repository_arns" {
  description = "Repository ARNs by image name."
  value       = { for k, r in aws_ecr_repository.this : k => r.arn }
}
