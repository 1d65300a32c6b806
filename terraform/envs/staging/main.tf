# staging: production-like topology (NAT per AZ, private API only) at a smaller scale, so
# rollouts are rehearsed on the same shape they will meet in prod.
terraform {
  backend "s3" {
    key          = "churn/staging/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
  }
}

module "platform" {
  source                   = "../../modules/platform"
  environment              = "staging"
  vpc_cidr                 = "10.20.0.0/16"
  single_nat_gateway       = false
  endpoint_public_access   = false
  admin_role_arns          = var.admin_role_arns
  versions                 = local.versions
  github_repository        = var.github_repository
  github_oidc_provider_arn = var.github_oidc_provider_arn
  node_groups = merge(
    {
      system    = { instance_types = ["m6i.large"], min_size = 2, max_size = 3, desired_size = 2 }
      inference = { instance_types = ["c6i.xlarge"], min_size = 2, max_size = 6, desired_size = 2 }
    },
    var.gpu_node_group == null ? {} : { gpu = var.gpu_node_group },
  )
  mlflow_database = { instance_class = "db.t4g.medium", multi_az = false }
}
