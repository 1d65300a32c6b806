# AWS is mocked (mock_provider): checks what the prod root would request, offline.
mock_provider "aws" {
  source = "../../tests/mocks"
}

run "prod_node_group_bounds" {
  command = plan
  assert {
    condition     = output.node_group_scaling["inference"] == { min_size = 3, max_size = 20, desired_size = 3 }
    error_message = "prod inference nodes must be min 3, max 20, desired 3: one node per AZ at least, room to scale out."
  }
  assert {
    condition     = output.node_group_scaling["system"] == { min_size = 3, max_size = 4, desired_size = 3 }
    error_message = "prod system nodes must be min 3, max 4, desired 3."
  }
  assert {
    condition     = keys(output.node_group_scaling) == ["inference", "system"]
    error_message = "No GPU group unless gpu_node_group is set."
  }
}

run "prod_gpu_group_is_opt_in" {
  command = plan
  variables {
    gpu_node_group = { instance_types = ["g5.xlarge"], min_size = 0, max_size = 2, desired_size = 0 }
  }
  assert {
    condition     = output.node_group_scaling["gpu"] == { min_size = 0, max_size = 2, desired_size = 0 }
    error_message = "gpu_node_group must add a GPU group with its bounds."
  }
}
