# An IAM role that one AWS service assumes (EKS control plane, EC2 nodes, VPC flow logs, RDS
# monitoring), with its managed and inline policies. Where the service sends the caller's
# account, the trust is limited to this account (confused-deputy guard).
resource "aws_iam_role" "this" {
  name = var.name
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [merge(
      {
        Effect    = "Allow"
        Principal = { Service = var.service }
        Action    = var.trust_actions
      },
      var.source_account == null ? {} : { Condition = { StringEquals = { "aws:SourceAccount" = var.source_account } } },
    )]
  })
  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "managed" {
  for_each   = toset(var.managed_policy_arns)
  role       = aws_iam_role.this.name
  policy_arn = each.value
}

resource "aws_iam_role_policy" "inline" {
  count  = var.policy_json == null ? 0 : 1
  name   = var.name
  role   = aws_iam_role.this.id
  policy = var.policy_json
}
