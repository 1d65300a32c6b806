# AWS is mocked (mock_provider): checks what the staging root would request, offline.
mock_provider "aws" {
  source = "../../tests/mocks"
}

run "staging_node_group_bounds" {
  command = plan
  assert {
    condition     = output.node_group_scaling["inference"] == { min_size = 2, max_size = 6, desired_size = 2 }
    error_message = "staging inference nodes must be min 2, max 6, desired 2: two nodes for rollout rehearsals."
  }
  assert {
    condition     = output.node_group_scaling["system"] == { min_size = 2, max_size = 3, desired_size = 2 }
    error_message = "staging system nodes must be min 2, max 3, desired 2."
  }
  assert {
    condition     = keys(output.node_group_scaling) == ["inference", "system"]
    error_message = "No GPU group unless gpu_node_group is set."
  }
}

run "staging_gpu_group_is_opt_in" {
  command = plan
  variables {
    gpu_node_group = { instance_types = ["g5.xlarge"], min_size = 0, max_size = 2, desired_size = 0 }
  }
  assert {
    condition     = output.node_group_scaling["gpu"] == { min_size = 0, max_size = 2, desired_size = 0 }
    error_message = "gpu_node_group must add a GPU group with its bounds."
  }
}
