# EKS-managed add-ons, each pinned (addon_version from platform/versions.yaml) so a plan never
# picks up a new build by itself. The VPC CNI comes first: nodes join only once pod networking
# can start on them. It enforces NetworkPolicies (enableNetworkPolicy; without it they would be
# decorative) and gives pods their own security groups (ENABLE_POD_ENI), which is how only the
# MLflow server reaches the database. It runs with its own IRSA role instead of the node role.
module "vpc_cni_role" {
  source              = "../irsa-role"
  name                = "${var.cluster_name}-vpc-cni"
  oidc_provider_arn   = aws_iam_openid_connect_provider.this.arn
  oidc_issuer_url     = aws_eks_cluster.this.identity[0].oidc[0].issuer
  namespace           = "kube-system"
  service_account     = "aws-node"
  managed_policy_arns = ["arn:${local.partition}:iam::aws:policy/AmazonEKS_CNI_Policy"]
  tags                = var.tags
}

resource "aws_eks_addon" "vpc_cni" {
  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = "vpc-cni"
  addon_version               = var.addon_versions["vpc-cni"]
  service_account_role_arn    = module.vpc_cni_role.arn
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"
  configuration_values = jsonencode({
    enableNetworkPolicy = "true"
    env = {
      ENABLE_POD_ENI = "true"
      # "standard": pods with their own security group still get the node's rules for kubelet
      # probes and DNS, and NetworkPolicies keep applying to them.
      POD_SECURITY_GROUP_ENFORCING_MODE = "standard"
    }
  })
  tags = var.tags
}

module "ebs_csi_role" {
  source              = "../irsa-role"
  name                = "${var.cluster_name}-ebs-csi"
  oidc_provider_arn   = aws_iam_openid_connect_provider.this.arn
  oidc_issuer_url     = aws_eks_cluster.this.identity[0].oidc[0].issuer
  namespace           = "kube-system"
  service_account     = "ebs-csi-controller-sa"
  managed_policy_arns = ["arn:${local.partition}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"]
  tags                = var.tags
}

locals {
  # Add-ons whose pods need nodes to become healthy; created after the node groups.
  workload_addons = {
    coredns              = { role = null }
    kube-proxy           = { role = null }
    metrics-server       = { role = null }
    "aws-ebs-csi-driver" = { role = module.ebs_csi_role.arn }
  }
}

resource "aws_eks_addon" "workload" {
  for_each                    = local.workload_addons
  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = each.key
  addon_version               = var.addon_versions[each.key]
  service_account_role_arn    = each.value.role
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"
  tags                        = var.tags
  depends_on                  = [aws_eks_node_group.this]
}
