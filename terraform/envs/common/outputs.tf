# Shared by every environment root (each envs/<env>/ links this file). These are what the
# kustomize overlays, `make images` and `make submit` consume.
output "cluster_name" {
  description = "EKS cluster name."
  value       = module.platform.cluster_name
}

output "kubeconfig_command" {
  description = "Run this to point kubectl at the cluster."
  value       = module.platform.kubeconfig_command
}

output "bucket_names" {
  description = "Bucket names by purpose: data, artifacts, models."
  value       = module.platform.bucket_names
}

output "ecr_repository_urls" {
  description = "Image repository URLs: components, serving."
  value       = module.platform.ecr_repository_urls
}

output "role_arns" {
  description = "IRSA role ARNs: model_reader, pipeline_runner, mlflow_server."
  value       = module.platform.role_arns
}

output "node_group_scaling" {
  description = "min/max/desired of each node group."
  value       = module.platform.node_group_scaling
}

output "mlflow_database_endpoint" {
  description = "host:port of the MLflow database, or null."
  value       = module.platform.mlflow_database_endpoint
}

output "overlay_env" {
  description = "Contents of manifests/overlays/<env>/platform.env."
  value       = module.platform.overlay_env
}

output "bootstrap" {
  description = "Inputs of `make platform ENV=...` (platform/bootstrap.py)."
  value       = module.platform.bootstrap
}

output "github_deploy_role_arn" {
  description = "GitHub environment variable AWS_DEPLOY_ROLE_ARN of this environment."
  value       = module.platform.github_deploy_role_arn
}

output "eks_addon_versions" {
  description = "Pinned build of each EKS-managed add-on (platform/versions.yaml)."
  value       = module.platform.eks_addon_versions
}
