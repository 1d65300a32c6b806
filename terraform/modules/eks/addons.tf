# Core add-ons managed by EKS. The VPC CNI runs with its own IRSA role (AmazonEKS_CNI_Policy)
# instead of borrowing the node role.
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
  cluster_name             = aws_eks_cluster.this.name
  addon_name               = "vpc-cni"
  service_account_role_arn = module.vpc_cni_role.arn
  tags                     = var.tags
}

resource "aws_eks_addon" "workload" {
  for_each     = toset(["coredns", "kube-proxy"])
  cluster_name = aws_eks_cluster.this.name
  addon_name   = each.value
  tags         = var.tags
  # CoreDNS pods need somewhere to run before the add-on reports healthy.
  depends_on = [aws_eks_node_group.this]
}
