# AWS is mocked (mock_provider): these runs check the network Terraform would request, offline.
mock_provider "aws" {
  source = "../../tests/mocks"
}

variables {
  name         = "churn-test"
  cluster_name = "churn-test"
  cidr_block   = "10.10.0.0/16"
}

run "three_azs_private_and_public_subnets" {
  assert {
    condition     = length(toset(aws_subnet.private[*].availability_zone)) == 3 && length(toset(aws_subnet.public[*].availability_zone)) == 3
    error_message = "Private and public subnets must each span three AZs."
  }
  assert {
    condition     = alltrue([for s in aws_subnet.public : !s.map_public_ip_on_launch])
    error_message = "Public subnets must not hand out public IPs by default."
  }
  assert {
    condition     = alltrue([for s in aws_subnet.private : endswith(s.cidr_block, "/20")])
    error_message = "Private subnets must be /20 (room for pod IPs)."
  }
  assert {
    condition     = alltrue([for r in aws_route.private_nat : r.nat_gateway_id != null && r.gateway_id == null])
    error_message = "Private subnets must reach the internet only through NAT."
  }
  assert {
    condition     = length(aws_nat_gateway.this) == 3
    error_message = "One NAT gateway per AZ by default."
  }
}

run "flow_logs_capture_everything_encrypted" {
  assert {
    condition     = aws_flow_log.this.traffic_type == "ALL" && aws_flow_log.this.log_destination == aws_cloudwatch_log_group.flow_logs.arn
    error_message = "Flow logs must record all traffic to the log group."
  }
  assert {
    condition     = aws_cloudwatch_log_group.flow_logs.kms_key_id == module.logs_key.key_arn
    error_message = "Flow logs must be KMS-encrypted."
  }
  assert {
    condition     = length(aws_default_security_group.this.ingress) == 0 && length(aws_default_security_group.this.egress) == 0
    error_message = "The default security group must allow nothing."
  }
}

run "single_nat_for_dev" {
  variables {
    single_nat_gateway = true
  }
  assert {
    condition     = length(aws_nat_gateway.this) == 1 && length(toset([for r in aws_route.private_nat : r.nat_gateway_id])) == 1
    error_message = "single_nat_gateway must route every private subnet through one NAT."
  }
}
