output "cluster_name" {
  description = "EKS cluster name."
  value       = module.eks.cluster_name
}

output "kubeconfig_command" {
  description = "Command that writes a kubeconfig entry for the cluster."
  value       = "aws eks update-kubeconfig --region ${data.aws_region.current.name} --name ${module.eks.cluster_name}"
}

output "bucket_names" {
  description = "Bucket names by purpose: data, artifacts, models."
  value       = module.storage.bucket_names
}

output "ecr_repository_urls" {
  description = "Image repository URLs: components, serving."
  value       = module.storage.ecr_repository_urls
}

output "role_arns" {
  description = "IRSA role ARNs: model_reader, pipeline_runner, mlflow_server."
  value       = module.iam.role_arns
}

output "mlflow_database_endpoint" {
  description = "host:port of the MLflow database, or null."
  value       = var.mlflow_database == null ? null : module.mlflow_db[0].endpoint
}

# The kustomize overlay reads these KEY=VALUE lines (make overlay-env ENV=...).
output "overlay_env" {
  description = "KEY=VALUE lines for manifests/overlays/<env>/platform.env."
  value = join("\n", [
    "MODELS_BUCKET=${module.storage.bucket_names["models"]}",
    "ARTIFACTS_BUCKET=${module.storage.bucket_names["artifacts"]}",
    "DATA_BUCKET=${module.storage.bucket_names["data"]}",
    "MODEL_READER_ROLE_ARN=${module.iam.role_arns["model_reader"]}",
    "PIPELINE_RUNNER_ROLE_ARN=${module.iam.role_arns["pipeline_runner"]}",
    "MLFLOW_SERVER_ROLE_ARN=${module.iam.role_arns["mlflow_server"]}",
    "SERVING_IMAGE=${module.storage.ecr_repository_urls["serving"]}",
    "",
  ])
}

output "node_group_scaling" {
  description = "min/max/desired of each node group, by pool."
  value       = module.eks.node_group_scaling
}
