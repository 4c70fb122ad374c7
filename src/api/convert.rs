//! Conversion as the Images API runs it, for both APIs: the new image of a v1
//! `x-glint-convert-from` request (`queued → saving → active`, or `killed`), and the v2 import
//! plugin `image_conversion` (the imported data converted to `[image_conversion] output_format`
//! before it is stored). The converted data is stored through [`ImagesService::store_data`], so
//! it is size-capped, hashed and inspected like any upload.

use std::collections::BTreeMap;

use super::images::ImagesService;
use super::request::BodySource;
use super::upload::from;
use super::Error;
use crate::api::error::RegistryOp;
use crate::convert::{self, Converted, Format};
use crate::model::{Image, Status};
use crate::patch::ImagePatch;
use crate::store::{Location, Retrieved};

/// The property naming the image a conversion was made from.
pub const CONVERTED_FROM: &str = "converted_from";

impl ImagesService {
    /// Converts the data of `source` (active, declared `from`) to `to` as the data of `image`
    /// (queued), stored in `store` or the default. Runs in a task of its own, so a client that
    /// goes away does not leave the image in `saving`: it still ends `active` or `killed`.
    pub(super) async fn convert_into(
        &self,
        image: Image,
        source: Image,
        (from_format, to): (Format, Format),
        store: Option<String>,
    ) -> Result<Image, Error> {
        // Journaled as an upload: a crash or a failure kills the image and cleans its store.
        let (work, image) = self.start_upload(&image, store.as_deref()).await?;
        let service = self.handle();
        let id = image.id;
        let task = tokio::spawn(async move {
            let result = match service.converted(&source, from_format, to).await {
                Ok(mut converted) => {
                    service
                        .store_data(image, store.as_deref(), &mut converted)
                        .await
                }
                Err(e) => {
                    service.kill(&image.id, Status::Saving).await;
                    Err(e)
                }
            };
            work.settle(result.is_ok()).await;
            result
        });
        match task.await {
            Ok(result) => result,
            Err(e) => {
                crate::error!("the conversion into image {id} did not finish: {e}");
                Err(Error::Unavailable(format!(
                    "The conversion into image {id} was interrupted"
                )))
            }
        }
    }

    /// The data of `source` converted from `from` to `to`, in a temporary file.
    async fn converted(
        &self,
        source: &Image,
        from: Format,
        to: Format,
    ) -> Result<Converted, Error> {
        let converter = self.converter.as_ref().ok_or_else(conversion_off)?;
        let uri = source
            .location
            .as_deref()
            .ok_or_else(|| Error::BadRequest(format!("Image {} has no data", source.id)))?;
        let data = self.stores.get(&Location::parse(uri)?).await?;
        Ok(converter
            .convert(data.body, from, to, self.settings.size_cap)
            .await?)
    }

    /// The conversion the `image_conversion` import plugin makes of an image declared as it is,
    /// if any: none without the plugin, for data already in the output format, or for an ISO
    /// (kept as it is, as Glance does). A format glint cannot convert is a 400.
    pub(super) fn import_conversion(
        &self,
        image: &Image,
    ) -> Result<Option<(Format, Format)>, Error> {
        let Some(to) = self.settings.conversion.import_output_format else {
            return Ok(None);
        };
        let declared = image.disk_format.as_deref().unwrap_or("raw");
        if declared == to.as_str() || declared == "iso" {
            return Ok(None);
        }
        let from = convert::convertible(declared).ok_or_else(|| {
            Error::BadRequest(format!(
                "Image import converts to {to} (image_conversion plugin), but glint cannot \
                 convert from disk_format {declared}; it converts {}",
                convert::names()
            ))
        })?;
        Ok(Some((from, to)))
    }

    /// The background half of an import once its data is open: the data stored as it is, or
    /// converted first when the `image_conversion` plugin applies (the record then says the
    /// new `disk_format`, and `container_format` `bare`, as Glance sets them).
    pub(super) async fn import_data(&self, image: Image, data: Retrieved) -> Result<(), Error> {
        let conversion = match self.import_conversion(&image) {
            Ok(conversion) => conversion,
            Err(e) => {
                self.kill(&image.id, Status::Importing).await;
                return Err(e);
            }
        };
        let Some((from_format, to)) = conversion else {
            let mut body = BodySource(data.body);
            return self.store_data(image, None, &mut body).await.map(drop);
        };
        let converted = match self.converter.as_ref() {
            Some(converter) => converter
                .convert(data.body, from_format, to, self.settings.size_cap)
                .await
                .map_err(Error::from),
            None => Err(conversion_off()),
        };
        let mut converted = match converted {
            Ok(converted) => converted,
            Err(e) => {
                self.kill(&image.id, Status::Importing).await;
                return Err(e);
            }
        };
        let formats = ImagePatch {
            disk_format: Some(Some(to.as_str().to_string())),
            container_format: Some(Some("bare".to_string())),
            ..Default::default()
        };
        let image = match self
            .catalog
            .update(&image.id, formats, from(Status::Importing))
            .await
        {
            Ok(image) => image,
            Err(e) => {
                self.kill(&image.id, Status::Importing).await;
                return Err(Error::from_registry(
                    e,
                    RegistryOp::FinishUpload { id: &image.id },
                ));
            }
        };
        self.store_data(image, None, &mut converted).await.map(drop)
    }
}

/// The record of an image converted from `source` to `to`: what the request set, else the
/// source's name, container format, `min_disk`, `min_ram` and custom properties, with
/// `converted_from` = the source's id. Who may see it (`is_public`), `protected` and the owner
/// are the request's (the caller's), never the source's.
pub(super) fn converted_patch(source: &Image, mut request: ImagePatch, to: Format) -> ImagePatch {
    request.disk_format = Some(Some(to.as_str().to_string()));
    request.name.get_or_insert_with(|| source.name.clone());
    request
        .container_format
        .get_or_insert_with(|| Some(source.container_format.clone().unwrap_or("bare".into())));
    request.min_disk.get_or_insert(source.min_disk);
    request.min_ram.get_or_insert(source.min_ram);
    let mut properties: BTreeMap<String, Option<String>> = source.properties.clone();
    properties.extend(request.properties.take().unwrap_or_default());
    properties.insert(CONVERTED_FROM.to_string(), Some(source.id.to_string()));
    request.properties = Some(properties);
    request
}

fn conversion_off() -> Error {
    Error::Unavailable(
        "Image conversion is not available (the conversion directory could not be made; see \
         the server log)"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_converted_image_takes_the_sources_metadata_unless_the_request_sets_it() {
        let mut source = Image::new(
            uuid::Uuid::new_v4(),
            Status::Active,
            crate::timestamp::Timestamp::from_micros(0),
        );
        source.name = Some("cirros".into());
        source.disk_format = Some("qcow2".into());
        source.container_format = Some("ovf".into());
        source.min_ram = 512;
        source.min_disk = 1;
        source.is_public = true;
        source.protected = true;
        source.owner = Some("someone".into());
        source.properties = BTreeMap::from([
            ("os_distro".to_string(), Some("cirros".to_string())),
            ("hw_disk_bus".to_string(), Some("virtio".to_string())),
            (CONVERTED_FROM.to_string(), Some("older".to_string())),
        ]);
        let request = ImagePatch {
            min_ram: Some(1024),
            properties: Some(BTreeMap::from([(
                "hw_disk_bus".to_string(),
                Some("scsi".to_string()),
            )])),
            ..Default::default()
        };
        let patch = converted_patch(&source, request, Format::Vhd);
        assert_eq!(patch.disk_format, Some(Some("vhd".into())));
        assert_eq!(patch.name, Some(Some("cirros".into())));
        assert_eq!(patch.container_format, Some(Some("ovf".into())));
        assert_eq!((patch.min_ram, patch.min_disk), (Some(1024), Some(1)));
        assert_eq!(
            (patch.is_public, patch.protected, patch.owner),
            (None, None, None)
        );
        let props = patch.properties.unwrap();
        assert_eq!(props["os_distro"].as_deref(), Some("cirros"));
        assert_eq!(
            props["hw_disk_bus"].as_deref(),
            Some("scsi"),
            "the request wins"
        );
        assert_eq!(props[CONVERTED_FROM], Some(source.id.to_string()));
    }
}
