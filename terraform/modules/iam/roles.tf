# Each role trusts exactly one service account (see ../irsa-role).
locals {
  roles = {
    model_reader    = { suffix = "kserve-model-reader", policy = local.model_reader }
    pipeline_runner = { suffix = "pipeline-runner", policy = local.pipeline_runner }
    mlflow_server   = { suffix = "mlflow-server", policy = local.mlflow_server }
  }
}

module "role" {
  source            = "../irsa-role"
  for_each          = local.roles
  name              = "${var.name_prefix}-${each.value.suffix}"
  oidc_provider_arn = var.oidc_provider_arn
  oidc_issuer_url   = var.oidc_issuer_url
  namespace         = var.service_accounts[each.key].namespace
  service_account   = var.service_accounts[each.key].name
  policy_json       = jsonencode(each.value.policy)
  tags              = var.tags
}
