# Everything one environment needs, wired together; each environment root calls this once with
# its own sizes, so the three environments cannot drift apart in shape, only in size.
data "aws_region" "current" {}

locals {
  name = "churn-${var.environment}"
  tags = merge(var.tags, { Project = "churn-mlops", Environment = var.environment, ManagedBy = "terraform" })
}

module "network" {
  source             = "../network"
  name               = local.name
  cluster_name       = local.name
  cidr_block         = var.vpc_cidr
  single_nat_gateway = var.single_nat_gateway
  tags               = local.tags
}

module "eks" {
  source                 = "../eks"
  cluster_name           = local.name
  kubernetes_version     = var.versions.kubernetes_version
  addon_versions         = var.versions.addons
  private_subnet_ids     = module.network.private_subnet_ids
  endpoint_public_access = var.endpoint_public_access
  public_access_cidrs    = var.public_access_cidrs
  admin_role_arns        = var.admin_role_arns
  node_groups            = var.node_groups
  tags                   = local.tags
}

module "storage" {
  source      = "../storage"
  name_prefix = local.name
  tags        = local.tags
}

module "mlflow_db" {
  source             = "../rds"
  count              = var.mlflow_database == null ? 0 : 1
  name               = "${local.name}-mlflow"
  vpc_id             = module.network.vpc_id
  private_subnet_ids = module.network.private_subnet_ids
  engine_version     = var.versions.postgres_major
  instance_class     = var.mlflow_database.instance_class
  multi_az           = var.mlflow_database.multi_az
  tags               = local.tags
}

module "iam" {
  source              = "../iam"
  name_prefix         = local.name
  oidc_provider_arn   = module.eks.oidc_provider_arn
  oidc_issuer_url     = module.eks.oidc_issuer_url
  bucket_arns         = module.storage.bucket_arns
  kms_key_arn         = module.storage.kms_key_arn
  database_secret_arn = var.mlflow_database == null ? null : module.mlflow_db[0].master_user_secret_arn
  tags                = local.tags
}

module "github" {
  source                = "../github-oidc"
  name                  = "${local.name}-github-deploy"
  repository            = var.github_repository
  environment           = var.environment
  existing_provider_arn = var.github_oidc_provider_arn
  ecr_repository_arns   = values(module.storage.ecr_repository_arns)
  tags                  = local.tags
}
