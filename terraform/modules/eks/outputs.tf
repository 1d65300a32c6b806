output "cluster_name" {
  description = "Name of the cluster."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "API server endpoint."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_security_group_id" {
  description = "Security group EKS attaches to the control plane and managed nodes."
  value       = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
}

output "oidc_provider_arn" {
  description = "ARN of the IAM OIDC provider (for IRSA trust policies)."
  value       = aws_iam_openid_connect_provider.this.arn
}

output "oidc_issuer_url" {
  description = "OIDC issuer URL of the cluster."
  value       = aws_eks_cluster.this.identity[0].oidc[0].issuer
}

output "node_group_names" {
  description = "Managed node groups by pool."
  value       = { for k, g in aws_eks_node_group.this : k => g.node_group_name }
}

output "node_group_scaling" {
  description = "min/max/desired of each node group, by pool."
  value       = { for k, g in aws_eks_node_group.this : k => g.scaling_config[0] }
}

output "node_group_subnet_ids" {
  description = "Subnets of each node group, by pool."
  value       = { for k, g in aws_eks_node_group.this : k => g.subnet_ids }
}

output "controller_role_arns" {
  description = "IRSA role ARNs of the Helm-installed controllers: cluster_autoscaler, load_balancer_controller."
  value = {
    cluster_autoscaler       = module.cluster_autoscaler_role.arn
    load_balancer_controller = module.load_balancer_controller_role.arn
  }
}

output "addon_versions" {
  description = "Installed build of each EKS-managed add-on."
  value       = tomap(merge({ "vpc-cni" = aws_eks_addon.vpc_cni.addon_version }, { for k, a in aws_eks_addon.workload : k => a.addon_version }))
}
