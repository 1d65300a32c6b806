output "arn" {
  description = "ARN of the role."
  value       = aws_iam_role.this.arn
}

output "name" {
  description = "Name of the role."
  value       = aws_iam_role.this.name
}

output "managed_policy_arns" {
  description = "Managed policies attached to the role."
  value       = [for a in aws_iam_role_policy_attachment.managed : a.policy_arn]
}
