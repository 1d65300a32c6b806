# Every accepted and rejected flow goes to an encrypted log group, kept for a year.
module "logs_key" {
  source                = "../kms"
  name                  = "${var.name}-flow-logs"
  description           = "Encrypts the VPC flow logs of ${var.name}"
  allow_cloudwatch_logs = true
  tags                  = var.tags
}

resource "aws_cloudwatch_log_group" "flow_logs" {
  name              = "/vpc/${var.name}/flow-logs"
  retention_in_days = var.flow_log_retention_days
  kms_key_id        = module.logs_key.key_arn
  tags              = var.tags
}

module "flow_logs_role" {
  source         = "../service-role"
  name           = "${var.name}-flow-logs"
  service        = "vpc-flow-logs.amazonaws.com"
  source_account = aws_vpc.this.owner_id
  policy_json = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
      Resource = ["${aws_cloudwatch_log_group.flow_logs.arn}:*"]
    }]
  })
  tags = var.tags
}

resource "aws_flow_log" "this" {
  vpc_id               = aws_vpc.this.id
  traffic_type         = "ALL"
  log_destination_type = "cloud-watch-logs"
  log_destination      = aws_cloudwatch_log_group.flow_logs.arn
  iam_role_arn         = module.flow_logs_role.arn
  tags                 = var.tags
}
