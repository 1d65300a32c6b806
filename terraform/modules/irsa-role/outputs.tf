output "arn" {
  description = "ARN of the role (the eks.amazonaws.com/role-arn annotation value)."
  value       = aws_iam_role.this.arn
}

output "name" {
  description = "Name of the role."
  value       = aws_iam_role.this.name
}

output "trust_policy" {
  description = "The role's trust policy (JSON), for audits and tests."
  value       = aws_iam_role.this.assume_role_policy
}

output "permissions_policy" {
  description = "The role's inline permissions policy (JSON), or null."
  value       = var.policy_json
}
