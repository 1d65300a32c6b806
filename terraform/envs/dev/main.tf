# dev: smallest footprint that still has the production shape: one NAT gateway, a single-AZ
# database, one inference node that may grow to three. Public API access only if CIDRs are given.
terraform {
  backend "s3" {
    key          = "churn/dev/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
  }
}

module "platform" {
  source                   = "../../modules/platform"
  environment              = "dev"
  vpc_cidr                 = "10.10.0.0/16"
  single_nat_gateway       = true
  endpoint_public_access   = length(var.public_access_cidrs) > 0
  public_access_cidrs      = var.public_access_cidrs
  admin_role_arns          = var.admin_role_arns
  versions                 = local.versions
  github_repository        = var.github_repository
  github_oidc_provider_arn = var.github_oidc_provider_arn
  node_groups = merge(
    {
      system    = { instance_types = ["t3.large"], min_size = 1, max_size = 3, desired_size = 2 }
      inference = { instance_types = ["m6i.large"], min_size = 1, max_size = 3, desired_size = 1 }
    },
    var.gpu_node_group == null ? {} : { gpu = var.gpu_node_group },
  )
  mlflow_database = { instance_class = "db.t4g.small", multi_az = false }
}
