# Managed node groups, one resource for all of them: system (cluster add-ons), inference (KServe
# predictors, sized per environment) and an optional GPU group (tainted so only pods that ask for
# GPUs land there). Nodes sit only in the private subnets and must use IMDSv2 with a hop limit
# of 1, so pods cannot borrow the node role: they get AWS access through IRSA only.
locals {
  gpu_taint = [{ key = "nvidia.com/gpu", value = "true", effect = "NO_SCHEDULE" }]
  node_groups = {
    for pool, g in var.node_groups : pool => merge(g, {
      ami_type = pool == "gpu" ? "AL2023_x86_64_NVIDIA" : "AL2023_x86_64_STANDARD"
      labels   = { "churn.io/pool" = pool }
      taints   = pool == "gpu" ? local.gpu_taint : []
    })
  }
}

# The CNI policy is deliberately absent: the vpc-cni add-on gets it through its own IRSA role.
module "node_role" {
  source  = "../service-role"
  name    = "${var.cluster_name}-node"
  service = "ec2.amazonaws.com"
  managed_policy_arns = [
    "arn:${local.partition}:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:${local.partition}:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
  ]
  tags = var.tags
}

resource "aws_launch_template" "node" {
  for_each               = local.node_groups
  name_prefix            = "${var.cluster_name}-${each.key}-"
  update_default_version = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = each.value.disk_size_gb
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { Name = "${var.cluster_name}-${each.key}" })
  }
  tags = var.tags
}

resource "aws_eks_node_group" "this" {
  for_each        = local.node_groups
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = each.key
  node_role_arn   = module.node_role.arn
  subnet_ids      = var.private_subnet_ids
  ami_type        = each.value.ami_type
  capacity_type   = each.value.capacity_type
  instance_types  = each.value.instance_types
  labels          = each.value.labels

  scaling_config {
    min_size     = each.value.min_size
    max_size     = each.value.max_size
    desired_size = each.value.desired_size
  }

  update_config {
    max_unavailable_percentage = 33
  }

  launch_template {
    id      = aws_launch_template.node[each.key].id
    version = aws_launch_template.node[each.key].latest_version
  }

  dynamic "taint" {
    for_each = each.value.taints
    content {
      key    = taint.value.key
      value  = taint.value.value
      effect = taint.value.effect
    }
  }

  tags = var.tags

  # The cluster autoscaler owns desired_size between min and max once the group exists.
  lifecycle {
    ignore_changes = [scaling_config[0].desired_size]
  }

  # Pod networking first (the VPC CNI add-on), then nodes: a node without it never turns Ready.
  depends_on = [module.node_role, aws_eks_addon.vpc_cni]
}
