# IRSA roles of the cluster controllers the platform bootstrap installs with Helm (platform/):
# the cluster autoscaler (it owns every node group's desired_size) and the AWS Load Balancer
# Controller (NLBs for the Istio ingress gateway). Each trusts exactly its service account.
module "cluster_autoscaler_role" {
  source            = "../irsa-role"
  name              = "${var.cluster_name}-cluster-autoscaler"
  oidc_provider_arn = aws_iam_openid_connect_provider.this.arn
  oidc_issuer_url   = aws_eks_cluster.this.identity[0].oidc[0].issuer
  namespace         = "kube-system"
  service_account   = "cluster-autoscaler"
  policy_json = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid    = "DiscoverGroups"
        Effect = "Allow"
        Action = [
          "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances",
          "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeScalingActivities",
          "autoscaling:DescribeTags", "ec2:DescribeImages", "ec2:DescribeInstanceTypes",
          "ec2:DescribeLaunchTemplateVersions", "ec2:GetInstanceTypesFromInstanceRequirements",
          "eks:DescribeNodegroup",
        ]
        Resource = "*"
      },
      {
        # Only groups EKS tagged as this cluster's (managed node groups carry the tag).
        Sid       = "ScaleOwnGroups"
        Effect    = "Allow"
        Action    = ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]
        Resource  = "*"
        Condition = { StringEquals = { "aws:ResourceTag/k8s.io/cluster-autoscaler/${var.cluster_name}" = "owned" } }
      },
    ]
  })
  tags = var.tags
}

module "load_balancer_controller_role" {
  source            = "../irsa-role"
  name              = "${var.cluster_name}-aws-load-balancer-controller"
  oidc_provider_arn = aws_iam_openid_connect_provider.this.arn
  oidc_issuer_url   = aws_eks_cluster.this.identity[0].oidc[0].issuer
  namespace         = "kube-system"
  service_account   = "aws-load-balancer-controller"
  # Upstream's policy for the pinned controller (docs/install/iam_policy.json of v2.14.1, the app
  # version of chart 1.14.1), vendored unchanged so upgrades are a diff against upstream.
  policy_json = file("${path.module}/policies/aws-load-balancer-controller.json")
  tags        = var.tags
}
