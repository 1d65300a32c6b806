# An IAM role that exactly one Kubernetes service account can assume through the cluster's OIDC
# provider (IRSA). StringEquals on both `sub` and `aud` is what makes it "exactly one": a
# StringLike or a missing `aud` would let other service accounts or token audiences in.
locals {
  issuer = replace(var.oidc_issuer_url, "https://", "")
}

resource "aws_iam_role" "this" {
  name                 = var.name
  description          = "IRSA role for system:serviceaccount:${var.namespace}:${var.service_account}"
  max_session_duration = 3600
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "OnlyServiceAccount${replace(title(replace(var.service_account, "-", " ")), " ", "")}"
      Effect    = "Allow"
      Principal = { Federated = var.oidc_provider_arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = {
          "${local.issuer}:sub" = "system:serviceaccount:${var.namespace}:${var.service_account}"
          "${local.issuer}:aud" = "sts.amazonaws.com"
        }
      }
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy" "this" {
  count  = var.policy_json == null ? 0 : 1
  name   = var.name
  role   = aws_iam_role.this.id
  policy = var.policy_json
}

resource "aws_iam_role_policy_attachment" "managed" {
  for_each   = toset(var.managed_policy_arns)
  role       = aws_iam_role.this.name
  policy_arn = each.value
}
