# The control plane: API endpoint private by default, Kubernetes secrets envelope-encrypted with
# a customer-managed key, all five control-plane log types kept in an encrypted log group.
data "aws_partition" "current" {}

locals {
  partition = data.aws_partition.current.partition
  log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
}

module "key" {
  source                = "../kms"
  name                  = "${var.cluster_name}-eks"
  description           = "Encrypts Kubernetes secrets and control-plane logs of ${var.cluster_name}"
  allow_cloudwatch_logs = true
  tags                  = var.tags
}

# Created before the cluster so EKS writes into a group with our retention and key.
resource "aws_cloudwatch_log_group" "control_plane" {
  name              = "/aws/eks/${var.cluster_name}/cluster"
  retention_in_days = var.log_retention_days
  kms_key_id        = module.key.key_arn
  tags              = var.tags
}

module "cluster_role" {
  source        = "../service-role"
  name          = "${var.cluster_name}-cluster"
  service       = "eks.amazonaws.com"
  trust_actions = ["sts:AssumeRole", "sts:TagSession"]
  # The VPC resource controller hands out branch ENIs: security groups for pods (MLflow).
  managed_policy_arns = [
    "arn:${local.partition}:iam::aws:policy/AmazonEKSClusterPolicy",
    "arn:${local.partition}:iam::aws:policy/AmazonEKSVPCResourceController",
  ]
  tags = var.tags
}

resource "aws_eks_cluster" "this" {
  # checkov:skip=CKV_AWS_39:The public endpoint is opt-in (dev only), and validation refuses it without explicit CIDRs or with 0.0.0.0/0; staging and prod are private-only.
  name                      = var.cluster_name
  version                   = var.kubernetes_version
  role_arn                  = module.cluster_role.arn
  enabled_cluster_log_types = local.log_types

  vpc_config {
    subnet_ids              = var.private_subnet_ids
    endpoint_private_access = true
    endpoint_public_access  = var.endpoint_public_access
    public_access_cidrs     = var.endpoint_public_access ? var.public_access_cidrs : null
  }

  encryption_config {
    resources = ["secrets"]
    provider {
      key_arn = module.key.key_arn
    }
  }

  # Access entries (IAM API), not the aws-auth ConfigMap; admins are granted explicitly below.
  access_config {
    authentication_mode                         = "API"
    bootstrap_cluster_creator_admin_permissions = false
  }

  tags       = var.tags
  depends_on = [module.cluster_role, aws_cloudwatch_log_group.control_plane]
}

resource "aws_eks_access_entry" "admin" {
  for_each      = toset(var.admin_role_arns)
  cluster_name  = aws_eks_cluster.this.name
  principal_arn = each.value
}

resource "aws_eks_access_policy_association" "admin" {
  for_each      = toset(var.admin_role_arns)
  cluster_name  = aws_eks_cluster.this.name
  principal_arn = each.value
  policy_arn    = "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
  access_scope {
    type = "cluster"
  }
  depends_on = [aws_eks_access_entry.admin]
}

# IRSA: pods exchange their projected service-account token for role credentials.
resource "aws_iam_openid_connect_provider" "this" {
  url            = aws_eks_cluster.this.identity[0].oidc[0].issuer
  client_id_list = ["sts.amazonaws.com"]
  tags           = var.tags
}

# Access is granted explicitly (no implicit creator admin): warn at plan time when nobody has it.
check "cluster_has_admins" {
  assert {
    condition     = length(var.admin_role_arns) > 0
    error_message = "admin_role_arns is empty: no IAM principal will be able to use the Kubernetes API of ${var.cluster_name}."
  }
}
