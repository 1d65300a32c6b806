output "role_arn" {
  description = "ARN of the deploy role (GitHub environment variable AWS_DEPLOY_ROLE_ARN)."
  value       = aws_iam_role.deploy.arn
}

output "trust_policy" {
  description = "Trust policy of the deploy role (JSON)."
  value       = aws_iam_role.deploy.assume_role_policy
}

output "provider_arn" {
  description = "ARN of the GitHub OIDC provider the role trusts."
  value       = local.provider_arn
}
