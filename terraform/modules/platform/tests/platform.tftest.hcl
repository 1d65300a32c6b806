# AWS is mocked (mock_provider): these runs check how the modules are wired, offline.
mock_provider "aws" {
  source = "../../tests/mocks"
}

variables {
  admin_role_arns = ["arn:aws:iam::111122223333:role/platform-operators"]
  environment     = "staging"
  vpc_cidr        = "10.20.0.0/16"
  node_groups = {
    system    = { instance_types = ["m6i.large"], min_size = 2, max_size = 3, desired_size = 2 }
    inference = { instance_types = ["c6i.xlarge"], min_size = 2, max_size = 6, desired_size = 2 }
  }
  mlflow_database   = { multi_az = false }
  github_repository = "acme/churn-mlops"
  versions = {
    kubernetes_version = "1.35"
    postgres_major     = "16"
    addons = {
      vpc-cni            = "v1.20.4-eksbuild.1"
      kube-proxy         = "v1.35.0-eksbuild.2"
      coredns            = "v1.12.3-eksbuild.1"
      aws-ebs-csi-driver = "v1.50.1-eksbuild.1"
      metrics-server     = "v0.8.0-eksbuild.2"
    }
  }
}

run "nodes_only_in_private_subnets" {
  assert {
    condition = alltrue(flatten([
      for pool, subnets in module.eks.node_group_subnet_ids : [
        for s in subnets : contains(module.network.private_subnet_ids, s) && !contains(module.network.public_subnet_ids, s)
      ]
    ]))
    error_message = "Every node group must be placed in the network's private subnets, never a public one."
  }
}

run "outputs_feed_the_overlays" {
  assert {
    condition     = output.kubeconfig_command == "aws eks update-kubeconfig --region eu-west-1 --name churn-staging"
    error_message = "kubeconfig_command must name the region and the cluster."
  }
  assert {
    condition     = output.bucket_names["models"] == "churn-staging-models-111122223333"
    error_message = "Bucket names must carry environment and account."
  }
  assert {
    condition = alltrue([
      for key in ["MODELS_BUCKET", "MODEL_READER_ROLE_ARN", "PIPELINE_RUNNER_ROLE_ARN", "MLFLOW_SERVER_ROLE_ARN", "SERVING_IMAGE", "MLFLOW_IMAGE", "MLFLOW_DB_CLIENT_SG", "CLUSTER_SG", "CLUSTER_REGION"] :
      strcontains(output.overlay_env, "${key}=")
    ])
    error_message = "overlay_env must hold every value the kustomize overlay replaces."
  }
  assert {
    condition     = output.mlflow_database_endpoint != null
    error_message = "A database was asked for."
  }
}

run "no_database_when_not_asked" {
  variables {
    mlflow_database = null
  }
  assert {
    condition     = output.mlflow_database_endpoint == null
    error_message = "mlflow_database = null must create no database."
  }
}

run "unknown_environment_rejected" {
  command = plan
  variables {
    environment = "qa"
  }
  expect_failures = [var.environment]
}

run "addons_pinned_and_cluster_version_from_versions_file" {
  command = plan
  assert {
    condition     = module.eks.addon_versions == var.versions.addons
    error_message = "Every EKS add-on must carry the build pinned in platform/versions.yaml."
  }
}
