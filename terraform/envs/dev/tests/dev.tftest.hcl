# AWS is mocked (mock_provider): checks what the dev root would request, offline.
mock_provider "aws" {
  source = "../../tests/mocks"
}

run "dev_node_group_bounds" {
  command = plan
  assert {
    condition     = output.node_group_scaling["inference"] == { min_size = 1, max_size = 3, desired_size = 1 }
    error_message = "dev inference nodes must be min 1, max 3, desired 1: one node, may grow to three."
  }
  assert {
    condition     = output.node_group_scaling["system"] == { min_size = 1, max_size = 3, desired_size = 2 }
    error_message = "dev system nodes must be min 1, max 3, desired 2."
  }
  assert {
    condition     = keys(output.node_group_scaling) == ["inference", "system"]
    error_message = "No GPU group unless gpu_node_group is set."
  }
}

run "dev_gpu_group_is_opt_in" {
  command = plan
  variables {
    gpu_node_group = { instance_types = ["g5.xlarge"], min_size = 0, max_size = 2, desired_size = 0 }
  }
  assert {
    condition     = output.node_group_scaling["gpu"] == { min_size = 0, max_size = 2, desired_size = 0 }
    error_message = "gpu_node_group must add a GPU group with its bounds."
  }
}
