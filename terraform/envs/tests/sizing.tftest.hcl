# Shared by the three environment roots (run from envs/<env> with -test-directory=../tests).
# AWS is mocked (mock_provider): the runs check what each root would request, offline. The root
# under test is recognised by its cluster name, churn-<env>.
mock_provider "aws" {
  source = "../../tests/mocks"
}

variables {
  admin_role_arns   = ["arn:aws:iam::111122223333:role/platform-operators"]
  github_repository = "acme/churn-mlops"
  expected_node_groups = {
    # One inference node that may grow to three.
    dev = {
      system    = { min_size = 1, max_size = 3, desired_size = 2 }
      inference = { min_size = 1, max_size = 3, desired_size = 1 }
    }
    # Two inference nodes so a canary always has a stable peer on another node.
    staging = {
      system    = { min_size = 2, max_size = 3, desired_size = 2 }
      inference = { min_size = 2, max_size = 6, desired_size = 2 }
    }
    # One inference node per AZ at least, room to scale out under load.
    prod = {
      system    = { min_size = 3, max_size = 4, desired_size = 3 }
      inference = { min_size = 3, max_size = 20, desired_size = 3 }
    }
  }
}

run "node_group_bounds_per_environment" {
  command = plan
  assert {
    condition     = output.node_group_scaling == var.expected_node_groups[trimprefix(output.cluster_name, "churn-")]
    error_message = "Node-group bounds of ${output.cluster_name} differ from the table in this file (and terraform/README.md)."
  }
}

run "gpu_group_is_opt_in" {
  command = plan
  variables {
    gpu_node_group = { instance_types = ["g5.xlarge"], min_size = 0, max_size = 2, desired_size = 0 }
  }
  assert {
    condition     = output.node_group_scaling["gpu"] == { min_size = 0, max_size = 2, desired_size = 0 }
    error_message = "gpu_node_group must add a GPU group with its bounds."
  }
}

run "versions_come_from_the_one_versions_file" {
  command = plan
  assert {
    condition     = output.eks_addon_versions == tomap(yamldecode(file("../../../platform/versions.yaml")).eks.addons)
    error_message = "The EKS add-ons must carry the builds pinned in platform/versions.yaml."
  }
}
