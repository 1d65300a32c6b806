# AWS is mocked (mock_provider): these runs check the cluster and node groups Terraform would
# request, offline.
mock_provider "aws" {
  source = "../../tests/mocks"
}

variables {
  admin_role_arns    = ["arn:aws:iam::111122223333:role/platform-operators"]
  cluster_name       = "churn-test"
  kubernetes_version = "1.35"
  addon_versions = {
    vpc-cni            = "v1.20.4-eksbuild.1"
    kube-proxy         = "v1.35.0-eksbuild.2"
    coredns            = "v1.12.3-eksbuild.1"
    aws-ebs-csi-driver = "v1.50.1-eksbuild.1"
    metrics-server     = "v0.8.0-eksbuild.2"
  }
  private_subnet_ids = ["subnet-private-a", "subnet-private-b", "subnet-private-c"]
  node_groups = {
    system    = { instance_types = ["t3.large"], min_size = 1, max_size = 3, desired_size = 2 }
    inference = { instance_types = ["m6i.large"], min_size = 2, max_size = 5, desired_size = 3 }
  }
}

run "control_plane_is_private_encrypted_and_logged" {
  assert {
    condition     = aws_eks_cluster.this.vpc_config[0].endpoint_private_access && !aws_eks_cluster.this.vpc_config[0].endpoint_public_access
    error_message = "By default the API endpoint must be private only."
  }
  assert {
    condition = (
      aws_eks_cluster.this.encryption_config[0].resources == toset(["secrets"]) &&
      aws_eks_cluster.this.encryption_config[0].provider[0].key_arn == module.key.key_arn
    )
    error_message = "Kubernetes secrets must be encrypted with the cluster's KMS key."
  }
  assert {
    condition     = aws_eks_cluster.this.enabled_cluster_log_types == toset(["api", "audit", "authenticator", "controllerManager", "scheduler"])
    error_message = "All control-plane log types must be enabled."
  }
  assert {
    condition     = aws_cloudwatch_log_group.control_plane.kms_key_id == module.key.key_arn && aws_cloudwatch_log_group.control_plane.retention_in_days >= 365
    error_message = "Control-plane logs must be encrypted and kept a year."
  }
  assert {
    condition     = aws_iam_openid_connect_provider.this.url == aws_eks_cluster.this.identity[0].oidc[0].issuer && aws_iam_openid_connect_provider.this.client_id_list == toset(["sts.amazonaws.com"])
    error_message = "The OIDC provider must federate the cluster's issuer for STS (IRSA)."
  }
}

run "admins_are_granted_explicitly" {
  assert {
    condition = (
      !aws_eks_cluster.this.access_config[0].bootstrap_cluster_creator_admin_permissions &&
      aws_eks_cluster.this.access_config[0].authentication_mode == "API" &&
      toset(keys(aws_eks_access_policy_association.admin)) == toset(var.admin_role_arns) &&
      alltrue([for a in aws_eks_access_policy_association.admin : endswith(a.policy_arn, "/AmazonEKSClusterAdminPolicy")])
    )
    error_message = "Cluster admins must come only from admin_role_arns, through access entries."
  }
}

run "no_admins_is_flagged" {
  command = plan
  variables {
    admin_role_arns = []
  }
  expect_failures = [check.cluster_has_admins]
}

run "nodes_are_private_and_use_imdsv2" {
  assert {
    condition     = alltrue([for g in values(aws_eks_node_group.this) : toset(g.subnet_ids) == toset(var.private_subnet_ids)])
    error_message = "Every node group must run in the private subnets only."
  }
  assert {
    condition = alltrue([
      for t in values(aws_launch_template.node) :
      t.metadata_options[0].http_tokens == "required" && t.metadata_options[0].http_put_response_hop_limit == 1 &&
      t.block_device_mappings[0].ebs[0].encrypted == "true"
    ])
    error_message = "Nodes must require IMDSv2 with hop limit 1 (pods use IRSA) and encrypt their disks."
  }
  assert {
    condition = (
      aws_eks_node_group.this["inference"].scaling_config[0].min_size == 2 &&
      aws_eks_node_group.this["inference"].scaling_config[0].max_size == 5 &&
      aws_eks_node_group.this["inference"].scaling_config[0].desired_size == 3
    )
    error_message = "The inference group must take its bounds from the input."
  }
  assert {
    condition     = !contains(keys(aws_eks_node_group.this), "gpu")
    error_message = "No GPU group unless asked for."
  }
  assert {
    condition     = length(module.node_role.managed_policy_arns) == 2 && alltrue([for a in module.node_role.managed_policy_arns : !endswith(a, "AmazonEKS_CNI_Policy")])
    error_message = "The node role must not carry the CNI policy (the vpc-cni add-on has its own IRSA role)."
  }
}

run "gpu_group_is_tainted" {
  variables {
    node_groups = {
      system    = { instance_types = ["t3.large"], min_size = 1, max_size = 3, desired_size = 2 }
      inference = { instance_types = ["m6i.large"], min_size = 2, max_size = 5, desired_size = 3 }
      gpu       = { instance_types = ["g5.xlarge"], min_size = 0, max_size = 2, desired_size = 0 }
    }
  }
  assert {
    condition = (
      aws_eks_node_group.this["gpu"].ami_type == "AL2023_x86_64_NVIDIA" &&
      [for t in aws_eks_node_group.this["gpu"].taint : t.key] == ["nvidia.com/gpu"]
    )
    error_message = "The GPU group must use the NVIDIA AMI and be tainted nvidia.com/gpu."
  }
}

run "public_endpoint_needs_cidrs" {
  command = plan
  variables {
    endpoint_public_access = true
  }
  expect_failures = [var.public_access_cidrs]
}

run "public_endpoint_never_open_to_the_world" {
  command = plan
  variables {
    endpoint_public_access = true
    public_access_cidrs    = ["0.0.0.0/0"]
  }
  expect_failures = [var.public_access_cidrs]
}

run "node_bounds_must_be_ordered" {
  command = plan
  variables {
    node_groups = {
      system    = { instance_types = ["t3.large"], min_size = 1, max_size = 3, desired_size = 2 }
      inference = { instance_types = ["m6i.large"], min_size = 4, max_size = 3, desired_size = 3 }
    }
  }
  expect_failures = [var.node_groups]
}

run "addons_are_pinned_and_enforce_network_policy" {
  command = plan
  assert {
    condition     = aws_eks_addon.vpc_cni.addon_version == var.addon_versions["vpc-cni"] && alltrue([for k, a in aws_eks_addon.workload : a.addon_version == var.addon_versions[k]])
    error_message = "Every add-on must be pinned to its build (no silent upgrades on apply)."
  }
  assert {
    condition = (
      jsondecode(aws_eks_addon.vpc_cni.configuration_values).enableNetworkPolicy == "true" &&
      jsondecode(aws_eks_addon.vpc_cni.configuration_values).env.ENABLE_POD_ENI == "true"
    )
    error_message = "The VPC CNI must enforce NetworkPolicies and give pods security groups (the MLflow database path)."
  }
  assert {
    condition     = aws_eks_addon.workload["aws-ebs-csi-driver"].service_account_role_arn == module.ebs_csi_role.arn
    error_message = "The EBS CSI driver needs its own IRSA role."
  }
  assert {
    condition     = contains(module.cluster_role.managed_policy_arns, "arn:aws:iam::aws:policy/AmazonEKSVPCResourceController")
    error_message = "Security groups for pods need the VPC resource controller policy on the cluster role."
  }
}

run "controllers_trust_only_their_service_accounts" {
  assert {
    condition = (
      jsondecode(module.cluster_autoscaler_role.trust_policy).Statement[0].Condition.StringEquals["oidc.eks.eu-west-1.amazonaws.com/id/MOCKISSUER:sub"] == "system:serviceaccount:kube-system:cluster-autoscaler" &&
      jsondecode(module.load_balancer_controller_role.trust_policy).Statement[0].Condition.StringEquals["oidc.eks.eu-west-1.amazonaws.com/id/MOCKISSUER:sub"] == "system:serviceaccount:kube-system:aws-load-balancer-controller"
    )
    error_message = "Each controller role must trust exactly its service account."
  }
}

run "unpinned_addon_rejected" {
  command = plan
  variables {
    addon_versions = { vpc-cni = "latest", kube-proxy = "x", coredns = "x", aws-ebs-csi-driver = "x", metrics-server = "x" }
  }
  expect_failures = [var.addon_versions]
}
