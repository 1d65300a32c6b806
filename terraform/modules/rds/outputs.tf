output "endpoint" {
  description = "host:port of the database."
  value       = aws_db_instance.this.endpoint
}

output "master_user_secret_arn" {
  description = "Secrets Manager ARN holding the generated credentials."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "client_security_group_id" {
  description = "Security group a pod needs (SecurityGroupPolicy) to reach the database."
  value       = aws_security_group.clients.id
}
