# prod: a NAT gateway and at least one inference node per AZ, headroom to scale out under load,
# private API endpoint only, Multi-AZ database.
terraform {
  backend "s3" {
    key          = "churn/prod/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
  }
}

module "platform" {
  source                   = "../../modules/platform"
  environment              = "prod"
  vpc_cidr                 = "10.30.0.0/16"
  single_nat_gateway       = false
  endpoint_public_access   = false
  admin_role_arns          = var.admin_role_arns
  versions                 = local.versions
  github_repository        = var.github_repository
  github_oidc_provider_arn = var.github_oidc_provider_arn
  node_groups = merge(
    {
      system    = { instance_types = ["m6i.large"], min_size = 3, max_size = 4, desired_size = 3 }
      inference = { instance_types = ["c6i.2xlarge"], min_size = 3, max_size = 20, desired_size = 3 }
    },
    var.gpu_node_group == null ? {} : { gpu = var.gpu_node_group },
  )
  mlflow_database = { instance_class = "db.r6g.large", multi_az = true }
}
