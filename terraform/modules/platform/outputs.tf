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
    "CLUSTER_REGION=${data.aws_region.current.name}",
    "MODELS_BUCKET=${module.storage.bucket_names["models"]}",
    "ARTIFACTS_BUCKET=${module.storage.bucket_names["artifacts"]}",
    "DATA_BUCKET=${module.storage.bucket_names["data"]}",
    "MODEL_READER_ROLE_ARN=${module.iam.role_arns["model_reader"]}",
    "PIPELINE_RUNNER_ROLE_ARN=${module.iam.role_arns["pipeline_runner"]}",
    "MLFLOW_SERVER_ROLE_ARN=${module.iam.role_arns["mlflow_server"]}",
    "SERVING_IMAGE=${module.storage.ecr_repository_urls["serving"]}",
    "MLFLOW_IMAGE=${module.storage.ecr_repository_urls["mlflow"]}",
    "MLFLOW_DB_CLIENT_SG=${var.mlflow_database == null ? "none" : module.mlflow_db[0].client_security_group_id}",
    "CLUSTER_SG=${module.eks.cluster_security_group_id}",
    "",
  ])
}

output "node_group_scaling" {
  description = "min/max/desired of each node group, by pool."
  value       = module.eks.node_group_scaling
}

# What `make platform ENV=...` needs from this environment (platform/bootstrap.py reads it with
# `terraform output -json bootstrap`).
output "bootstrap" {
  description = "Inputs of the platform bootstrap: cluster, region, VPC, controller roles, MLflow database."
  value = {
    cluster_name                      = module.eks.cluster_name
    region                            = data.aws_region.current.name
    vpc_id                            = module.network.vpc_id
    cluster_autoscaler_role_arn       = module.eks.controller_role_arns["cluster_autoscaler"]
    load_balancer_controller_role_arn = module.eks.controller_role_arns["load_balancer_controller"]
    mlflow_database_endpoint          = var.mlflow_database == null ? null : module.mlflow_db[0].endpoint
    mlflow_database_secret_arn        = var.mlflow_database == null ? null : module.mlflow_db[0].master_user_secret_arn
    github_repository                 = var.github_repository
  }
}

output "github_deploy_role_arn" {
  description = "Role CD assumes through GitHub OIDC (GitHub environment variable AWS_DEPLOY_ROLE_ARN)."
  value       = module.github.role_arn
}

output "eks_addon_versions" {
  description = "Pinned build of each EKS-managed add-on."
  value       = module.eks.addon_versions
}
