output "role_arns" {
  description = "IRSA role ARNs by workload: model_reader, pipeline_runner, mlflow_server."
  value       = { for k, r in module.role : k => r.arn }
}

output "trust_policies" {
  description = "Trust policy JSON by workload (who may assume each role)."
  value       = { for k, r in module.role : k => r.trust_policy }
}

output "permissions_policies" {
  description = "Permissions policy JSON by workload."
  value       = { for k, r in module.role : k => r.permissions_policy }
}
