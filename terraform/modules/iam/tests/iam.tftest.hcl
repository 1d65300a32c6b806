# AWS is mocked (mock_provider): these runs check the IAM documents Terraform would send, offline.
mock_provider "aws" {
  source = "../../tests/mocks"
}

variables {
  name_prefix       = "churn-test"
  oidc_provider_arn = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC"
  oidc_issuer_url   = "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC"
  kms_key_arn       = "arn:aws:kms:eu-west-1:111122223333:key/k"
  bucket_arns = {
    data      = "arn:aws:s3:::churn-test-data"
    artifacts = "arn:aws:s3:::churn-test-artifacts"
    models    = "arn:aws:s3:::churn-test-models"
  }
  expected_subjects = {
    model_reader    = "system:serviceaccount:churn:churn-model-reader"
    pipeline_runner = "system:serviceaccount:kubeflow:pipeline-runner"
    mlflow_server   = "system:serviceaccount:churn:mlflow-server"
  }
}

run "each_role_trusts_exactly_its_service_account" {
  assert {
    condition     = toset(keys(output.trust_policies)) == toset(keys(var.expected_subjects))
    error_message = "Expected exactly the model_reader, pipeline_runner and mlflow_server roles."
  }
  assert {
    condition = alltrue([
      for role, doc in output.trust_policies : (
        length(jsondecode(doc).Statement) == 1 &&
        jsondecode(doc).Statement[0].Action == "sts:AssumeRoleWithWebIdentity" &&
        jsondecode(doc).Statement[0].Principal == { Federated = var.oidc_provider_arn } &&
        keys(jsondecode(doc).Statement[0].Condition) == ["StringEquals"]
      )
    ])
    error_message = "Each trust policy must be one web-identity statement for the cluster's OIDC provider, StringEquals only (no wildcards)."
  }
  assert {
    condition = alltrue([
      for role, doc in output.trust_policies :
      jsondecode(doc).Statement[0].Condition.StringEquals == {
        "oidc.eks.eu-west-1.amazonaws.com/id/ABC:sub" = var.expected_subjects[role]
        "oidc.eks.eu-west-1.amazonaws.com/id/ABC:aud" = "sts.amazonaws.com"
      }
    ])
    error_message = "Each role must be bound to exactly its own service account subject and the STS audience."
  }
}

run "model_reader_is_read_only_on_the_models_prefix" {
  assert {
    condition = alltrue([
      for s in jsondecode(output.permissions_policies["model_reader"]).Statement :
      alltrue([for a in flatten([s.Action]) : can(regex("^(s3:Get|s3:List|kms:Decrypt$)", a))])
    ])
    error_message = "The KServe model reader may only read (Get/List/Decrypt)."
  }
  assert {
    condition = alltrue([
      for s in jsondecode(output.permissions_policies["model_reader"]).Statement :
      alltrue([for r in flatten([s.Resource]) : r == var.kms_key_arn || startswith(r, var.bucket_arns["models"])])
    ])
    error_message = "The KServe model reader may touch only the models bucket and the storage key."
  }
  assert {
    condition     = contains(flatten([for s in jsondecode(output.permissions_policies["model_reader"]).Statement : s.Resource]), "${var.bucket_arns["models"]}/churn/models/*")
    error_message = "Object reads must be scoped to the churn/models/ prefix."
  }
}

run "pipeline_runner_reads_and_writes_data_and_artifacts" {
  assert {
    condition = alltrue([
      for b in ["data", "artifacts"] :
      contains(flatten([for s in jsondecode(output.permissions_policies["pipeline_runner"]).Statement : s.Resource if contains(flatten([s.Action]), "s3:PutObject")]), "${var.bucket_arns[b]}/*")
    ])
    error_message = "The pipeline runner must be able to write the data and artifact buckets."
  }
  assert {
    condition = alltrue([
      for s in jsondecode(output.permissions_policies["pipeline_runner"]).Statement :
      !contains(flatten([s.Resource]), "*") && !contains(flatten([s.Action]), "s3:*")
    ])
    error_message = "No wildcard resources or actions."
  }
}

run "mlflow_server_reads_its_database_secret_only_when_given" {
  variables {
    database_secret_arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:db"
  }
  assert {
    condition     = contains(flatten([for s in jsondecode(output.permissions_policies["mlflow_server"]).Statement : s.Resource]), var.database_secret_arn)
    error_message = "The MLflow server must read the database secret."
  }
  assert {
    condition     = alltrue([for s in jsondecode(output.permissions_policies["model_reader"]).Statement : !contains(flatten([s.Resource]), var.database_secret_arn)])
    error_message = "Only the MLflow server may read the database secret."
  }
}

run "service_accounts_can_be_rebound" {
  variables {
    service_accounts = {
      model_reader    = { namespace = "serving", name = "reader" }
      pipeline_runner = { namespace = "kubeflow-user", name = "default-editor" }
      mlflow_server   = { namespace = "mlflow", name = "mlflow" }
    }
  }
  assert {
    condition     = jsondecode(output.trust_policies["pipeline_runner"]).Statement[0].Condition.StringEquals["oidc.eks.eu-west-1.amazonaws.com/id/ABC:sub"] == "system:serviceaccount:kubeflow-user:default-editor"
    error_message = "The trust must follow the configured service account."
  }
}
